public import Crypto

/// An EC public key for checking database signatures. libloc signs with the key type's default
/// digest, which for EC keys is SHA-256; IPFire's key is on secp521r1.
public enum DatabasePublicKey: Sendable {
    case p256(P256.Signing.PublicKey)
    case p384(P384.Signing.PublicKey)
    case p521(P521.Signing.PublicKey)

    /// Parses a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) for P-256, P-384 or P-521.
    public init(pem text: String) throws(LocationDatabaseError) {
        let pem = pemBlock(text)
        if let key = try? P521.Signing.PublicKey(pemRepresentation: pem) { self = .p521(key); return }
        if let key = try? P384.Signing.PublicKey(pemRepresentation: pem) { self = .p384(key); return }
        if let key = try? P256.Signing.PublicKey(pemRepresentation: pem) { self = .p256(key); return }
        throw .signature("the public key is not a PEM EC public key on P-256, P-384 or P-521")
    }

    func isValid(derSignature: [UInt8], digest: SHA256.Digest) -> Bool {
        switch self {
        case .p256(let key):
            guard let s = try? P256.Signing.ECDSASignature(derRepresentation: derSignature) else { return false }
            return key.isValidSignature(s, for: digest)
        case .p384(let key):
            guard let s = try? P384.Signing.ECDSASignature(derRepresentation: derSignature) else { return false }
            return key.isValidSignature(s, for: digest)
        case .p521(let key):
            guard let s = try? P521.Signing.ECDSASignature(derRepresentation: derSignature) else { return false }
            return key.isValidSignature(s, for: digest)
        }
    }
}

/// The first `-----BEGIN …-----` … `-----END …-----` block; like OpenSSL, text around it
/// (IPFire's key file starts with comment lines) is ignored.
func pemBlock(_ text: String) -> String {
    let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
    guard let begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") }),
          let end = lines[begin...].firstIndex(where: { $0.hasPrefix("-----END ") }) else { return text }
    return lines[begin...end].joined(separator: "\n") + "\n"
}

/// An EC private key for signing databases.
public enum DatabaseSigningKey: Sendable {
    case p256(P256.Signing.PrivateKey)
    case p384(P384.Signing.PrivateKey)
    case p521(P521.Signing.PrivateKey)

    /// Parses a PEM private key (`EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
    public init(pem text: String) throws(LocationDatabaseError) {
        let pem = pemBlock(text)
        if let key = try? P521.Signing.PrivateKey(pemRepresentation: pem) { self = .p521(key); return }
        if let key = try? P384.Signing.PrivateKey(pemRepresentation: pem) { self = .p384(key); return }
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) { self = .p256(key); return }
        throw .signature("the signing key is not a PEM EC private key on P-256, P-384 or P-521")
    }

    public var publicKey: DatabasePublicKey {
        switch self {
        case .p256(let k): return .p256(k.publicKey)
        case .p384(let k): return .p384(k.publicKey)
        case .p521(let k): return .p521(k.publicKey)
        }
    }

    /// DER-encoded ECDSA signature of the SHA-256 digest.
    func sign(_ digest: SHA256.Digest) throws(LocationDatabaseError) -> [UInt8] {
        do {
            switch self {
            case .p256(let k): return Array(try k.signature(for: digest).derRepresentation)
            case .p384(let k): return Array(try k.signature(for: digest).derRepresentation)
            case .p521(let k): return Array(try k.signature(for: digest).derRepresentation)
            }
        } catch {
            throw .signature("signing failed: \(error)")
        }
    }
}

/// The result of checking a database's signatures.
public enum SignatureVerification: Sendable, Equatable {
    /// Slot 1 or 2 (the first that verified).
    case valid(slot: Int)
    /// No signature in the file.
    case unsigned
    /// Signatures present, none verifies with the key.
    case invalid
}

/// SHA-256 over the bytes libloc signs: the whole file with both signature lengths and both
/// signature areas (file bytes 68..<4168) read as zeros.
func signedDigest(of bytes: UnsafeRawBufferPointer) -> SHA256.Digest {
    var hasher = SHA256()
    let hole = Format.signedHoleRange
    hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[0..<hole.lowerBound]))
    let zeros = [UInt8](repeating: 0, count: hole.count)
    zeros.withUnsafeBytes { hasher.update(bufferPointer: $0) }
    hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[hole.upperBound...]))
    return hasher.finalize()
}

extension LocationDatabase {
    /// Verifies the signatures with `publicKey`: valid if either slot verifies (as libloc does).
    public func verify(publicKey: DatabasePublicKey) -> SignatureVerification {
        let (first, second) = signatures
        if first == nil, second == nil { return .unsigned }
        let digest = signedDigest(of: storage.bytes)
        if let first, publicKey.isValid(derSignature: first, digest: digest) { return .valid(slot: 1) }
        if let second, publicKey.isValid(derSignature: second, digest: digest) { return .valid(slot: 2) }
        return .invalid
    }

    /// Verifies with a PEM public key; throws with a clear message unless a signature verifies.
    public func verify(publicKeyPEM: String) throws(LocationDatabaseError) {
        let key = try DatabasePublicKey(pem: publicKeyPEM)
        switch verify(publicKey: key) {
        case .valid: return
        case .unsigned: throw .signature("the database has no signature")
        case .invalid: throw .signature("no signature of the database verifies with this public key (tampered file or wrong key)")
        }
    }
}

extension DatabaseSigningKey {
    /// A new random key on P-256, P-384 or P-521 (`bits` 256, 384 or 521).
    public static func generate(bits: Int = 521) throws(LocationDatabaseError) -> DatabaseSigningKey {
        switch bits {
        case 256: return .p256(P256.Signing.PrivateKey())
        case 384: return .p384(P384.Signing.PrivateKey())
        case 521: return .p521(P521.Signing.PrivateKey())
        default: throw .invalidInput("unsupported key size \(bits); use 256, 384 or 521")
        }
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    public var pemRepresentation: String {
        switch self {
        case .p256(let k): return k.pemRepresentation
        case .p384(let k): return k.pemRepresentation
        case .p521(let k): return k.pemRepresentation
        }
    }
}

extension DatabasePublicKey {
    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), what `location verify -k` reads.
    public var pemRepresentation: String {
        switch self {
        case .p256(let k): return k.pemRepresentation
        case .p384(let k): return k.pemRepresentation
        case .p521(let k): return k.pemRepresentation
        }
    }
}
