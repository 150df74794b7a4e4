public import HTTPTypes

extension HTTPFields {
    /// What `self[name]` gives, without its cost when the field occurs at most once: the
    /// subscript joins every occurrence into a new string, on every call. The fast paths read
    /// two to four fields per request and the joins were about 40 % of the claim route's
    /// own CPU (bench/claims.sh profile). Repeated fields still go through the subscript.
    public func value(of name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            if found != nil { return self[name] }
            found = field.value
        }
        return found
    }
}
