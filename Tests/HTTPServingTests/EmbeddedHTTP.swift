import HTTPTypes
import NIOEmbedded
import NIOHTTPTypes

/// Request parts in, response parts out, on an EmbeddedChannel: what the handler tests share.
enum EmbeddedHTTP {
    static func head(_ path: String = "/", method: HTTPRequest.Method = .get, _ fields: HTTPFields = [:]) -> HTTPRequestPart {
        .head(HTTPRequest(method: method, scheme: "http", authority: "x", path: path, headerFields: fields))
    }

    /// Everything written outbound so far.
    static func written(_ channel: EmbeddedChannel) throws -> [HTTPResponsePart] {
        var out: [HTTPResponsePart] = []
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) { out.append(part) }
        return out
    }

    /// The status codes of the answers among `parts`.
    static func statuses(_ parts: [HTTPResponsePart]) -> [Int] {
        parts.compactMap { if case .head(let h) = $0 { return h.status.code } else { return nil } }
    }
}
