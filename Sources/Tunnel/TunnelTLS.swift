public import NIOSSL

/// Builds the TLS context of an `https` listener.
public enum TunnelTLS {
    /// From a PEM certificate chain file and a PEM private key file.
    public static func serverContext(certificateChainPEMFile: String, privateKeyPEMFile: String) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateChainPEMFile)
        let key = try NIOSSLPrivateKey(file: privateKeyPEMFile, format: .pem)
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        return try NIOSSLContext(configuration: configuration)
    }

    /// From a PKCS#12 bundle, as the anchor's `--pk`/`--password`.
    public static func serverContext(pkcs12File: String, password: String) throws -> NIOSSLContext {
        let bundle = try NIOSSLPKCS12Bundle(file: pkcs12File, passphrase: Array(password.utf8))
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: bundle.certificateChain.map { .certificate($0) }, privateKey: .privateKey(bundle.privateKey))
        return try NIOSSLContext(configuration: configuration)
    }
}

extension TunnelMode {
    /// An `https` listener with a PEM certificate chain and key.
    public static func https(certificateChainPEMFile: String, privateKeyPEMFile: String) throws -> TunnelMode {
        .https(try TunnelTLS.serverContext(certificateChainPEMFile: certificateChainPEMFile, privateKeyPEMFile: privateKeyPEMFile))
    }

    /// An `https` listener with a PKCS#12 bundle.
    public static func https(pkcs12File: String, password: String) throws -> TunnelMode {
        .https(try TunnelTLS.serverContext(pkcs12File: pkcs12File, password: password))
    }
}
