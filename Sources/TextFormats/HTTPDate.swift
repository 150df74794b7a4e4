#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// HTTP dates (RFC 9110 IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`): the `Date` header,
/// `Last-Modified` / `If-Modified-Since`, and the libloc version text (`location version`,
/// a DNS TXT answer), all through this one formatter and parser.
public enum HTTPDate {
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Unix seconds as an IMF-fixdate (UTC).
    public static func format<Seconds: BinaryInteger>(_ seconds: Seconds) -> String {
        var t = time_t(truncatingIfNeeded: Int64(clamping: seconds))
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    /// An IMF-fixdate back to Unix seconds; nil for anything else. The text may come from a
    /// client header or a DNS answer, so every field is range-checked before it reaches `tm`
    /// (`year - 1900` trapped on a year of -2147483648).
    public static func parse(_ text: String) -> UInt64? {
        let fields = text.split(separator: " ")
        guard fields.count == 6, fields[5] == "GMT", let day = Int32(fields[1]), let month = months.firstIndex(of: String(fields[2])),
              let year = Int32(fields[3]) else { return nil }
        let clock = fields[4].split(separator: ":").compactMap { Int32($0) }
        guard clock.count == 3 else { return nil }
        guard (1970...9999).contains(year), (1...31).contains(day), (0...23).contains(clock[0]), (0...59).contains(clock[1]),
              (0...60).contains(clock[2]) else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = Int32(month)
        parts.tm_mday = day
        parts.tm_hour = clock[0]
        parts.tm_min = clock[1]
        parts.tm_sec = clock[2]
        let seconds = timegm(&parts)
        return seconds < 0 ? nil : UInt64(seconds)
    }

    /// Per thread (event loops are threads): no lock on the hot path.
    private final class Cache {
        var second = -1
        var text = ""
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { stored in
            if let stored { Unmanaged<AnyObject>.fromOpaque(stored).release() }
        }
        return key
    }()

    /// The current time for a `Date` header, formatted once per second and thread.
    public static func now() -> String {
        var ts = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_REALTIME_COARSE, &ts)
        #else
        clock_gettime(CLOCK_REALTIME, &ts)
        #endif
        let second = Int(ts.tv_sec)
        let cache: Cache
        if let stored = pthread_getspecific(key) {
            cache = Unmanaged<Cache>.fromOpaque(stored).takeUnretainedValue()
        } else {
            cache = Cache()
            pthread_setspecific(key, Unmanaged.passRetained(cache).toOpaque())
        }
        if cache.second != second {
            cache.second = second
            cache.text = format(second)
        }
        return cache.text
    }
}
