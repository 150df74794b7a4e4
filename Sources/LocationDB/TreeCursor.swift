/// One network found in the tree: where it starts, its depth (prefix length in the 128-bit
/// space) and the index of its record.
struct TreeNetwork {
    var address: Address128
    var depth: Int
    var record: UInt32
}

/// Depth-first, pre-order walk of the network tree, zero side first: networks come out in
/// ascending order of first address, a supernet before its subnets (the reference order).
///
/// With `validating`, every node may be reached once only, every child and network index must
/// be in range and no node below depth 128 may have children; anything else throws. The walk a
/// database does at open validates; later walks over the same bytes then cannot fail.
struct TreeCursor {
    private let storage: DatabaseStorage
    private let nodeOffset: Int
    private let nodeCount: Int
    private let networkCount: Int
    private var stack: [(node: UInt32, depth: Int, address: Address128)]
    private var visited: [UInt64]

    init(storage: DatabaseStorage, nodeOffset: Int, nodeCount: Int, networkCount: Int, validating: Bool) {
        self.storage = storage
        self.nodeOffset = nodeOffset
        self.nodeCount = nodeCount
        self.networkCount = networkCount
        stack = nodeCount > 0 ? [(0, 0, .zero)] : []
        stack.reserveCapacity(260)
        visited = validating ? [UInt64](repeating: 0, count: (nodeCount + 63) / 64) : []
    }

    /// The next network, or nil at the end. Throws only when validating.
    mutating func next() throws(LocationDatabaseError) -> TreeNetwork? {
        while let (node, depth, address) = stack.popLast() {
            let base = nodeOffset + Int(node) * Format.nodeRecordSize
            let zero = storage.u32(base), one = storage.u32(base + 4), network = storage.u32(base + 8)
            if !visited.isEmpty {
                let word = Int(node >> 6), bit = UInt64(1) << UInt64(node & 63)
                guard visited[word] & bit == 0 else {
                    throw .corrupt("tree node \(node) is reached twice (a cycle or a shared child)")
                }
                visited[word] |= bit
                if zero != 0 || one != 0 {
                    guard depth < 128 else { throw .corrupt("tree node \(node) at depth 128 has children") }
                    guard zero < nodeCount, one < nodeCount else {
                        throw .corrupt("tree node \(node) has a child index past the \(nodeCount) nodes")
                    }
                }
                guard network == Format.noNetwork || Int(network) < networkCount else {
                    throw .corrupt("tree node \(node) points to network record \(network) of \(networkCount)")
                }
            }
            // On a validated file these guards never trigger; they keep reads in bounds anyway.
            if depth < 128, one != 0, one < nodeCount {
                var child = address
                child.setBit(depth)
                stack.append((one, depth + 1, child))
            }
            if depth < 128, zero != 0, zero < nodeCount { stack.append((zero, depth + 1, address)) }
            if network != Format.noNetwork, Int(network) < networkCount {
                return TreeNetwork(address: address, depth: depth, record: network)
            }
        }
        return nil
    }
}

/// Receives the intervals of an `IntervalSweep`, in ascending order.
protocol IntervalSink {
    mutating func interval(first: Address128, last: Address128, value: UInt64, depth: UInt8)
}

/// Turns a pre-order stream of (possibly nested) networks into the flat partition of an address
/// range: each interval carries the value of the deepest network covering it (or the base
/// value). Adjacent intervals with equal value and depth are merged before reaching the sink.
struct IntervalSweep<Sink: IntervalSink> {
    private var stack: [(last: Address128, value: UInt64, depth: UInt8)]
    private var cursor: Address128
    private var finished = false
    private let spaceLast: Address128
    private var pending: (first: Address128, last: Address128, value: UInt64, depth: UInt8)?
    var sink: Sink

    init(first: Address128, last: Address128, baseValue: UInt64, baseDepth: UInt8, sink: Sink) {
        stack = [(last, baseValue, baseDepth)]
        stack.reserveCapacity(260)
        cursor = first
        spaceLast = last
        self.sink = sink
    }

    /// Replaces the value for addresses covered by no added network (before anything is added).
    mutating func setBase(value: UInt64, depth: UInt8) {
        stack[0].value = value
        stack[0].depth = depth
    }

    /// Adds a network; networks must come in pre-order (ascending start, supernets first).
    mutating func add(first: Address128, last: Address128, value: UInt64, depth: UInt8) {
        while stack.count > 1, stack[stack.count - 1].last < first {
            let top = stack.removeLast()
            emit(through: top.last, value: top.value, depth: top.depth)
        }
        if cursor < first, !finished {
            let top = stack[stack.count - 1]
            emit(through: first.predecessor, value: top.value, depth: top.depth)
        }
        stack.append((last, value, depth))
    }

    mutating func finish() {
        while let top = stack.popLast() {
            emit(through: top.last, value: top.value, depth: top.depth)
        }
        if let p = pending { sink.interval(first: p.first, last: p.last, value: p.value, depth: p.depth) }
        pending = nil
    }

    private mutating func emit(through end: Address128, value: UInt64, depth: UInt8) {
        guard !finished, cursor <= end else { return }
        if let p = pending, p.value == value, p.depth == depth {
            pending = (p.first, end, value, depth)
        } else {
            if let p = pending { sink.interval(first: p.first, last: p.last, value: p.value, depth: p.depth) }
            pending = (cursor, end, value, depth)
        }
        if end == spaceLast { finished = true } else { cursor = end.successor }
    }
}
