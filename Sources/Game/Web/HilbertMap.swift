import CompressNIO
import NIOCore
import GameRules

/// A 256×256 picture of one /8: each pixel is one /24 (the address's second and third bytes),
/// laid along a Hilbert curve so that numerically close networks stay close in the picture.
/// Each pixel has the colour of the player with the most current addresses in that /24 (grey
/// when tied, light when empty). Encoded as an 8-bit palette PNG.
enum HilbertMap {
    static let side = 256
    /// Levels of the player map: a /16 holds up to 65,536 addresses (bit length 17).
    static let playerMapLevels = 17
    /// Levels of `/plot/N`: a /20 holds up to 4,096 addresses (bit length 13).
    static let plotLevels = 13

    /// Position of curve index `d` (0..<side²) on a side×side Hilbert curve.
    static func point(_ d: Int, side n: Int = side) -> (x: Int, y: Int) {
        var x = 0, y = 0, t = d, s = 1
        while s < n {
            let rx = 1 & (t / 2)
            let ry = 1 & (t ^ rx)
            if ry == 0 {
                if rx == 1 { x = s - 1 - x; y = s - 1 - y }
                swap(&x, &y)
            }
            x += s * rx
            y += s * ry
            t /= 4
            s *= 2
        }
        return (x, y)
    }

    /// Curve index → pixel offset, computed once.
    static let offsets: [Int32] = (0..<(side * side)).map { d in
        let p = point(d)
        return Int32(p.y * side + p.x)
    }

    static let emptyIndex: UInt8 = 0
    static let tiedIndex: UInt8 = 1

    static func palette() -> [UInt8] {
        var out: [UInt8] = [0xF1, 0xF1, 0xF1, 0x8C, 0x8C, 0x8C]
        for c in 0..<WebStyle.hueClasses {
            let (r, g, b) = NameColour.rgb(hueClass: c)
            out += [r, g, b]
        }
        return out
    }

    /// The palette index of every pixel, from `Scoreboard.areaHolders`.
    static func pixels(names: [PlayerName], holders: [Int32]) -> [UInt8] {
        let colourOf = names.map { UInt8(2 + NameColour.hueClass($0.value)) }
        var pixels = [UInt8](repeating: emptyIndex, count: side * side)
        for d in 0..<min(holders.count, side * side) {
            let h = holders[d]
            pixels[Int(offsets[d])] = h == -2 ? tiedIndex : h >= 0 ? colourOf[Int(h)] : emptyIndex
        }
        return pixels
    }

    static func png(names: [PlayerName], holders: [Int32]) -> [UInt8] {
        png(side: side, pixels: pixels(names: names, holders: holders), palette: palette())
    }

    /// Counts laid along a `side`×`side` Hilbert curve (`counts[d]` at `point(d)`) as palette
    /// indices: 0 for none, else the count's bit length (1 → 1, 2–3 → 2, 4–7 → 3, …), at most `levels`.
    static func densityPixels(_ counts: [UInt32], side n: Int, levels: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: n * n)
        for d in 0..<min(counts.count, n * n) where counts[d] > 0 {
            let p = point(d, side: n)
            pixels[p.y * n + p.x] = UInt8(min(levels, 32 - counts[d].leadingZeroBitCount))
        }
        return pixels
    }

    /// A palette from the empty background (index 0) to `rgb` at full strength (index `levels`).
    static func densityPalette(_ rgb: (UInt8, UInt8, UInt8), levels: Int) -> [UInt8] {
        var out: [UInt8] = [0xF1, 0xF1, 0xF1]
        for level in 1...levels {
            let t = 0.25 + 0.75 * Double(level - 1) / Double(max(1, levels - 1))
            func mix(_ c: UInt8) -> UInt8 { UInt8((Double(0xF1) + (Double(c) - Double(0xF1)) * t).rounded()) }
            out += [mix(rgb.0), mix(rgb.1), mix(rgb.2)]
        }
        return out
    }

    /// An 8-bit palette PNG of `side`×`side` pixels (palette indices, row by row).
    static func png(side: Int, pixels: [UInt8], palette: [UInt8]) -> [UInt8] {
        var raw = ByteBuffer()
        raw.reserveCapacity(side * (side + 1))
        for row in 0..<side {
            raw.writeInteger(UInt8(0)) // filter: none
            raw.writeBytes(pixels[(row * side)..<((row + 1) * side)])
        }
        let compressed = (try? raw.compress(with: .zlib())).map { Array($0.readableBytesView) } ?? storedZlib(Array(raw.readableBytesView))
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        header += be32(UInt32(side)) + be32(UInt32(side))
        header += [8, 3, 0, 0, 0] // 8-bit, palette, deflate, no filter method extras, no interlace
        chunk(&out, "IHDR", header)
        chunk(&out, "PLTE", palette)
        chunk(&out, "IDAT", compressed)
        chunk(&out, "IEND", [])
        return out
    }

    private static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }

    private static func chunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        out += be32(UInt32(data.count))
        let typed = Array(type.utf8) + data
        out += typed
        out += be32(crc32(typed))
    }

    private static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// zlib stream of stored (uncompressed) blocks: the fallback if compression fails.
    static func storedZlib(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var i = 0
        repeat {
            let n = min(65_535, data.count - i)
            let last: UInt8 = i + n >= data.count ? 1 : 0
            out += [last, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[i..<(i + n)]
            i += n
        } while i < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for x in data { a = (a + UInt32(x)) % 65_521; b = (b + a) % 65_521 }
        return out + be32(b << 16 | a)
    }
}
