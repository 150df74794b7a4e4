extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace), as a slice.
    public var trimmingSpacesAndTabs: SubSequence {
        var start = startIndex
        var end = endIndex
        while start < end, self[start] == " " || self[start] == "\t" { start = index(after: start) }
        while end > start {
            let before = index(before: end)
            guard self[before] == " " || self[before] == "\t" else { break }
            end = before
        }
        return self[start..<end]
    }
}
