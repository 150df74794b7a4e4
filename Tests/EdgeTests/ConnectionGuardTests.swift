import IPAddress
import Testing
@testable import Edge

/// Decisions at accept: the per-network cap (issue 20, item 5) and that a trusted proxy is
/// never refused for a ban or the cap (issue 20, item 2).
@Suite struct ConnectionGuardTests {
    static let proxy = IPAddress("127.0.0.1")!

    func makeGuard(perNetwork: Int, total: Int = 100) -> ConnectionGuard {
        ConnectionGuard(maxConnections: total, maxConnectionsPerNetwork: perNetwork, bans: BanList(capacity: 16),
                        trustedProxies: TrustedProxies([try! IPPrefix(parsing: "127.0.0.1/32")]))
    }

    @Test func oneNetworkCannotHoldEverySlot() throws {
        let guardian = makeGuard(perNetwork: 3, total: 20)
        var held: [ConnectionGuard.Admitted] = []
        for host in 1...3 { held.append(try guardian.admit(peer: IPAddress("198.51.100.\(host)")!).get()) }
        // A fourth from the same /24 is refused; another /24 still gets in.
        #expect(throws: ConnectionGuard.Rejection.networkCapacity) { try guardian.admit(peer: IPAddress("198.51.100.200")!).get() }
        held.append(try guardian.admit(peer: IPAddress("198.51.101.1")!).get())
        #expect(guardian.openConnections(of: IPAddress("198.51.100.9")!) == 3)
        // A closed one gives its slot back.
        guardian.closed(held.removeFirst())
        held.append(try guardian.admit(peer: IPAddress("198.51.100.4")!).get())
        for a in held { guardian.closed(a) }
        #expect(guardian.openConnections == 0)
        #expect(guardian.openConnections(of: IPAddress("198.51.100.9")!) == 0)
    }

    @Test func ipv6NetworksAreSlash48() throws {
        let guardian = makeGuard(perNetwork: 1)
        _ = try guardian.admit(peer: IPAddress("2001:db8:1:2::1")!).get()
        #expect(throws: ConnectionGuard.Rejection.networkCapacity) { try guardian.admit(peer: IPAddress("2001:db8:1:ffff::9")!).get() }
        _ = try guardian.admit(peer: IPAddress("2001:db8:2::1")!).get()
    }

    @Test func trustedProxyIsNeverCappedOrBanned() throws {
        let guardian = makeGuard(perNetwork: 2)
        guardian.bans.ban(NetworkKey(Self.proxy), forSeconds: 300)
        for _ in 0..<10 { _ = try guardian.admit(peer: Self.proxy).get() }
        guardian.bans.ban(NetworkKey(IPAddress("127.0.0.9")!), forSeconds: 300)
        #expect(throws: ConnectionGuard.Rejection.banned) { try guardian.admit(peer: IPAddress("127.0.0.9")!).get() }
    }

    @Test func totalCapStillApplies() throws {
        let guardian = makeGuard(perNetwork: 5, total: 2)
        _ = try guardian.admit(peer: IPAddress("192.0.2.1")!).get()
        _ = try guardian.admit(peer: IPAddress("192.0.2.2")!).get()
        #expect(throws: ConnectionGuard.Rejection.capacity) { try guardian.admit(peer: IPAddress("198.51.100.1")!).get() }
        #expect(guardian.openConnections(of: IPAddress("198.51.100.1")!) == 0, "a refused connection holds no per-network slot")
    }
}
