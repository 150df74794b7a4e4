#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TextFormats

/// Finds the creation time of the newest published database the way libloc does: a DNS TXT
/// record (`_v1._db.location.ipfire.org`) holding a date like `Sat, 29 Oct 2022 05:59:54 GMT`.
/// A minimal stub resolver: one UDP query per nameserver of `/etc/resolv.conf` (IPv4 ones),
/// bounds-checked answer parsing. DNSSEC is not validated; the downloaded file's signature is.
public enum DatabaseVersionDiscovery {
    public static let domain = "_v1._db.location.ipfire.org"

    /// The IPv4 nameservers listed in a resolv.conf text.
    public static func nameservers(resolvConf text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver", IPv4AddressText.isValid(fields[1]) else { return nil }
            return String(fields[1])
        }
    }

    /// UNIX time of the newest database; throws when no resolver is configured or none answers.
    /// `nameservers` ("a.b.c.d" or "a.b.c.d:port") replace those of /etc/resolv.conf.
    public static func latestVersion(domain: String = domain, nameservers given: [String]? = nil,
                                     timeoutMilliseconds: Int32 = 3000) throws(LocationDatabaseError) -> UInt64 {
        var servers = given ?? []
        if given == nil {
            guard let f = fopen("/etc/resolv.conf", "r") else { throw .ioError("no resolver configured (/etc/resolv.conf missing)") }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = fread(&chunk, 1, chunk.count, f)
                if n <= 0 { break }
                bytes += chunk.prefix(n)
            }
            fclose(f)
            let text = String(decoding: bytes, as: UTF8.self)
            servers = nameservers(resolvConf: text)
        }
        guard !servers.isEmpty else { throw .ioError("no resolver configured (no IPv4 nameserver in /etc/resolv.conf)") }
        var lastError = "no answer"
        for server in servers {
            do {
                let texts = try queryTXT(domain, server: server, timeoutMilliseconds: timeoutMilliseconds)
                for text in texts {
                    if let seconds = HTTPDate.parse(text) { return seconds }
                }
                lastError = "\(server): no usable TXT record for \(domain)"
            } catch {
                lastError = "\(server): \(error)"
            }
        }
        throw .ioError("DNS lookup of \(domain) failed: \(lastError)")
    }

    /// The TXT strings for `name` from one server.
    static func queryTXT(_ name: String, server: String, timeoutMilliseconds: Int32) throws(LocationDatabaseError) -> [String] {
        let id = UInt16.random(in: 0...UInt16.max)
        var query: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") {
            let bytes = Array(label.utf8)
            guard !bytes.isEmpty, bytes.count < 64 else { throw .invalidInput("bad DNS name \(name)") }
            query.append(UInt8(bytes.count))
            query += bytes
        }
        query += [0, 0, 16, 0, 1]  // root, QTYPE TXT, QCLASS IN

        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw .ioError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // "a.b.c.d" or "a.b.c.d:port" (tests run a resolver on a loopback port).
        var host = server, port: UInt16 = 53
        if let colon = server.lastIndex(of: ":") {
            guard let p = UInt16(server[server.index(after: colon)...]), p > 0 else { throw .invalidInput("bad nameserver \(server)") }
            host = String(server[..<colon])
            port = p
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw .invalidInput("bad nameserver \(server)") }
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, query, query.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard sent == query.count else { throw .ioError("sendto: \(String(cString: strerror(errno)))") }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) == 1 else { throw .ioError("no answer within \(timeoutMilliseconds) ms") }
        var answer = [UInt8](repeating: 0, count: 4096)
        let received = recv(fd, &answer, answer.count, 0)
        guard received > 0 else { throw .ioError("recv: \(String(cString: strerror(errno)))") }
        return try parseTXTAnswer(Array(answer.prefix(received)), id: id)
    }

    /// TXT strings of a DNS answer (each record's character-strings joined).
    static func parseTXTAnswer(_ m: [UInt8], id: UInt16) throws(LocationDatabaseError) -> [String] {
        func u16(_ i: Int) throws(LocationDatabaseError) -> Int {
            guard i + 2 <= m.count else { throw .corrupt("short DNS answer") }
            return Int(m[i]) << 8 | Int(m[i + 1])
        }
        func skipName(_ start: Int) throws(LocationDatabaseError) -> Int {
            var i = start
            while true {
                guard i < m.count else { throw .corrupt("short DNS answer") }
                let length = Int(m[i])
                if length == 0 { return i + 1 }
                if length & 0xC0 == 0xC0 { return i + 2 }  // compression pointer ends the name
                i += 1 + length
            }
        }
        guard try u16(0) == Int(id) else { throw .corrupt("DNS answer for another query") }
        let flags = try u16(2)
        guard flags & 0x8000 != 0 else { throw .corrupt("not a DNS answer") }
        guard flags & 0x000F == 0 else { throw .ioError("DNS error code \(flags & 0x000F)") }
        let questions = try u16(4), answers = try u16(6)
        var i = 12
        for _ in 0..<questions { i = try skipName(i) + 4 }
        var texts: [String] = []
        for _ in 0..<answers {
            i = try skipName(i)
            let type = try u16(i), length = try u16(i + 8)
            let data = i + 10
            guard data + length <= m.count else { throw .corrupt("short DNS answer") }
            if type == 16 {
                var text: [UInt8] = []
                var j = data
                while j < data + length {
                    let n = Int(m[j])
                    guard j + 1 + n <= data + length else { throw .corrupt("bad TXT record") }
                    text += m[(j + 1)..<(j + 1 + n)]
                    j += 1 + n
                }
                texts.append(String(decoding: text, as: UTF8.self))
            }
            i = data + length
        }
        return texts
    }
}

enum IPv4AddressText {
    static func isValid(_ text: Substring) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, String(text), &address) == 1
    }
}
