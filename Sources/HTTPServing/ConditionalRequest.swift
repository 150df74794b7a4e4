public import Edge
public import HTTPTypes
import TextFormats

/// Conditional GETs (RFC 9110 §13): whether an answer may be 304 Not Modified. One rule for
/// the snapshot reads, the pages, `web.root` files and the response cache.
public enum ConditionalRequest {
    /// `If-None-Match` names `etag` (weak comparison) or is `*`; without `If-None-Match`,
    /// `If-Modified-Since` is not before `modifiedAt` (Unix seconds), when one is known.
    public static func isNotModified(_ request: HTTPFields, etag: String, modifiedAt: Int64? = nil) -> Bool {
        if let list = request[.ifNoneMatch] { return matches(list, etag) }
        guard let modifiedAt, let since = request[.ifModifiedSince].flatMap(HTTPDate.parse) else { return false }
        return Int64(clamping: since) >= modifiedAt
    }

    /// Whether an `If-None-Match` list names `etag` (weak comparison) or is `*`.
    public static func matches(_ list: String, _ etag: String) -> Bool {
        let strong = etag.hasPrefix("W/") ? etag.dropFirst(2) : Substring(etag)
        return list.split(separator: ",").contains { item in
            let tag = item.trimmingSpacesAndTabs
            return tag == "*" || tag == strong || (tag.hasPrefix("W/") && tag.dropFirst(2) == strong)
        }
    }
}
