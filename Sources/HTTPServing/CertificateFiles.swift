public import Edge
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
public import NIOSSL
import Synchronization

/// A PEM certificate chain and private key on disk, read into a server `TLSConfiguration`, and
/// re-read when either file changes (renewals by certbot and the like replace them).
public final class CertificateFiles: Sendable {
    public let certificatePath: String
    public let keyPath: String

    struct Identity: Equatable {
        var device: UInt64, inode: UInt64, size: Int64, seconds: Int, nanoseconds: Int
    }

    private let loaded: Mutex<[Identity?]>

    public init(certificatePath: String, keyPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        loaded = Mutex([nil, nil])
    }

    /// Reads both files now and remembers their identity.
    public func load() throws -> TLSConfiguration {
        let identities = [Self.identity(certificatePath), Self.identity(keyPath)]
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
        guard !chain.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
        let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        loaded.withLock { $0 = identities }
        return configuration
    }

    /// A new configuration when either file changed since the last load; nil otherwise. Throws
    /// when the changed files do not load (the caller keeps serving with the previous ones).
    public func reloadIfChanged() throws -> TLSConfiguration? {
        let now = [Self.identity(certificatePath), Self.identity(keyPath)]
        guard now != loaded.withLock({ $0 }) else { return nil }
        do {
            return try load()
        } catch {
            loaded.withLock { $0 = now } // report a broken pair once, not on every check
            throw error
        }
    }

    static func identity(_ path: String) -> Identity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                        seconds: Int(info.st_mtim.tv_sec), nanoseconds: Int(info.st_mtim.tv_nsec))
    }
}
