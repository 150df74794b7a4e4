/// Constants of the libloc database format, version 1 (`src/libloc/format.h`).
/// All integers in the file are big-endian; offsets are absolute file offsets.
enum Format {
    static let magic: [UInt8] = Array("LOCDBXX".utf8)
    static let version1: UInt8 = 1
    static let magicSize = 8
    /// `struct loc_database_header_v1`.
    static let headerSize = 4192
    static let headerEnd = magicSize + headerSize  // 4200
    static let pageSize = 4096
    static let maxSignatureLength = 2048

    // Header field offsets, relative to the start of the file.
    static let createdAtOffset = 8
    static let vendorOffset = 16
    static let descriptionOffset = 20
    static let licenseOffset = 24
    static let asOffsetField = 28
    static let networkDataOffsetField = 36
    static let networkTreeOffsetField = 44
    static let countriesOffsetField = 52
    static let poolOffsetField = 60
    static let signature1LengthOffset = 68
    static let signature2LengthOffset = 70
    static let signature1Offset = 72
    static let signature2Offset = 72 + 2048
    /// Bytes zeroed when computing or checking a signature: both lengths and both signatures.
    static let signedHoleRange = 68..<(72 + 2 * 2048)

    static let asRecordSize = 8
    static let nodeRecordSize = 12
    static let networkRecordSize = 12
    static let countryRecordSize = 8

    /// `network` field of a tree node without a network.
    static let noNetwork: UInt32 = 0xFFFF_FFFF
}
