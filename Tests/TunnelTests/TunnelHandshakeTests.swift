import Foundation
import NIOCore
import IPQuestTestSupport
import Testing

@testable import Tunnel

/// The handshake state machine on its own: events in, actions out, no sockets and no clock.
@Suite struct TunnelHandshakeTests {
    typealias Handshake = TunnelHandshake
    typealias Action = TunnelHandshake.Action

    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    static func settings(
        mode: TunnelMode = .http, _ adjust: (inout TunnelConfiguration) -> Void = { _ in }
    ) -> Handshake.Settings {
        var configuration = TunnelConfiguration()
        configuration.clientConnection.initiationTimeout = .seconds(5)
        configuration.targetConnection.connectTimeout = .seconds(3)
        configuration.targetConnection.deniedNetworks = .init()
        adjust(&configuration)
        return Handshake.Settings(configuration, mode: mode)
    }

    /// A handshake that has started (http: reading the head).
    static func started(_ settings: Handshake.Settings = settings(), at now: NIODeadline = t0) -> Handshake {
        var handshake = Handshake(settings: settings)
        let action = handshake.start(admitted: true, now: now)
        if case .requested = settings.target { #expect(action == .read) }
        return handshake
    }

    static func address(_ ip: String, _ port: Int) -> SocketAddress {
        try! SocketAddress(ipAddress: ip, port: port)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The status and body of an error answer (and checks its framing), or nil when `action` is something else.
    static func refusal(_ action: Action) -> (status: Int, body: String, then: Handshake.AfterAnswer)? {
        guard case .answer(let answer, let then) = action else { return nil }
        let text = String(decoding: answer.bytes, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let body = parts.count > 1 ? parts[1] : ""
        #expect(text.hasPrefix("HTTP/1.1 \(answer.status.rawValue) \(answer.status.reasonPhrase)\r\n"))
        if answer.status != .established {
            #expect(text.contains("\r\nContent-Length: \(body.utf8.count)\r\n"))
            #expect(text.contains("\r\nConnection: close\r\n"))
            #expect(answer.outcome == .refused(answer.status, String(body.dropFirst("\(answer.status.rawValue) \(answer.status.reasonPhrase): ".count).dropLast())))
        }
        return (answer.status.rawValue, body, then)
    }

    // MARK: the head

    @Test func aCompleteHeadInOneReadConnectsToALiteralThenAnswers200() {
        var handshake = Self.started()
        let action = handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\r\nHost: 192.0.2.1:443\r\n\r\n"), now: Self.t0)
        #expect(action == .connect(Self.address("192.0.2.1", 443)))
        #expect(handshake.phase == .connecting)
        #expect(handshake.target == "192.0.2.1:443")
        #expect(handshake.deadline == Self.t0 + .seconds(3))
        let answer = handshake.connected()
        #expect(
            answer
                == .answer(
                    .init(status: .established, bytes: Self.bytes("HTTP/1.1 200 Connection Established\r\n\r\n"), outcome: nil),
                    then: .relay(.init(toTarget: [], clientInputClosed: false))))
        #expect(answer.isTerminal)
        #expect(handshake.phase == .relaying)
        #expect(handshake.deadline == nil)
    }

    @Test func aHeadSentAByteAtATimeIsReadUntilItEnds() {
        var handshake = Self.started()
        let head = Self.bytes("CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\nX-A: b\r\n\r\n")
        for byte in head.dropLast() {
            #expect(handshake.bytesReceived([byte], now: Self.t0) == .read)
            #expect(handshake.readsClient)
        }
        #expect(handshake.bytesReceived([head.last!], now: Self.t0 + .seconds(1)) == .resolve(host: "example.test", port: 443))
        #expect(!handshake.readsClient)
        #expect(handshake.deadline == Self.t0 + .seconds(4), "the connect timeout counts from the head's end")
        let addresses = [Self.address("192.0.2.7", 443), Self.address("2001:db8::7", 443)]
        #expect(handshake.resolved(addresses, now: Self.t0 + .seconds(1)) == .connect(addresses[0]))
    }

    @Test func bareLineFeedsEndAHeadToo() {
        var handshake = Self.started()
        #expect(handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\n"), now: Self.t0) == .read)
        #expect(handshake.bytesReceived(Self.bytes("\n"), now: Self.t0) == .connect(Self.address("192.0.2.1", 443)))
    }

    @Test func bytesAfterTheHeadAndDuringTheConnectGoToTheTargetFirst() {
        var handshake = Self.started()
        let action = handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\r\n\r\nearly|"), now: Self.t0)
        #expect(action == .connect(Self.address("192.0.2.1", 443)))
        #expect(handshake.bytesReceived(Self.bytes("later"), now: Self.t0) == .wait)
        guard case .answer(_, then: .relay(let relay)) = handshake.connected() else {
            Issue.record("no relay")
            return
        }
        #expect(relay.toTarget == Self.bytes("early|later"))
    }

    @Test func aHeadOf16KiBWithoutItsEndIs400() {
        var handshake = Self.started()
        #expect(handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\r\nX-Filler: "), now: Self.t0) == .read)
        var action = Action.read
        var sent = 44
        while action == .read {
            action = handshake.bytesReceived([UInt8](repeating: UInt8(ascii: "x"), count: 1000), now: Self.t0)
            sent += 1000
        }
        #expect(sent >= ProxyRequestHeadParser.maximumHeadSize && sent < ProxyRequestHeadParser.maximumHeadSize + 1000)
        let refusal = Self.refusal(action)
        #expect(refusal?.status == 400)
        #expect(refusal?.body.contains("too large") == true)
        #expect(refusal?.then == .drainThenClose)
        #expect(handshake.phase == .answering)
    }

    @Test func aMalformedRequestLineIsRefusedBeforeTheHeadEnds() {
        var handshake = Self.started()
        let action = handshake.bytesReceived(Self.bytes("CONNECT  192.0.2.1:443 HTTP/1.1\r\nHost"), now: Self.t0)
        #expect(Self.refusal(action)?.status == 400)
    }

    @Test func otherMethodsAre405UnlessForwardingIsOn() {
        var refused = Self.started()
        let action = refused.bytesReceived(Self.bytes("GET http://192.0.2.1/ HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n"), now: Self.t0)
        #expect(Self.refusal(action)?.status == 405)
        guard case .answer(let answer, _) = action else { return }
        #expect(String(decoding: answer.bytes, as: UTF8.self).contains("\r\nAllow: CONNECT\r\n"))

        var forwarded = Self.started(Self.settings { $0.forwardPlainHTTP = true })
        let connect = forwarded.bytesReceived(
            Self.bytes("GET http://192.0.2.1/x HTTP/1.1\r\nHost: 192.0.2.1\r\nProxy-Connection: keep-alive\r\n\r\nnext"), now: Self.t0)
        #expect(connect == .connect(Self.address("192.0.2.1", 80)))
        #expect(
            forwarded.connected()
                == .relay(.init(toTarget: Self.bytes("GET /x HTTP/1.1\r\nHost: 192.0.2.1\r\nConnection: close\r\n\r\nnext"), clientInputClosed: false)))
    }

    // MARK: the rules

    @Test func targetsOutsideTheRulesAre403() {
        let allowlist = Self.settings { $0.targetConnection.allowedTargets = try! TargetPattern(#"ok\.test:443"#) }
        var handshake = Self.started(allowlist)
        let refused = handshake.bytesReceived(Self.bytes("CONNECT xok.test:443 HTTP/1.1\r\n\r\n"), now: Self.t0)
        #expect(Self.refusal(refused)?.status == 403)
        #expect(Self.refusal(refused)?.body == "403 Forbidden: target not allowed\n")
        handshake = Self.started(allowlist)
        #expect(handshake.bytesReceived(Self.bytes("CONNECT ok.test:443 HTTP/1.1\r\n\r\n"), now: Self.t0) == .resolve(host: "ok.test", port: 443))

        handshake = Self.started(Self.settings { $0.targetConnection.allowedPorts = [443] })
        #expect(Self.refusal(handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:22 HTTP/1.1\r\n\r\n"), now: Self.t0))?.body.contains("port") == true)

        let denying = Self.settings { $0.targetConnection.deniedNetworks = TargetConnectionConfiguration.defaultDeniedNetworks }
        handshake = Self.started(denying)
        #expect(Self.refusal(handshake.bytesReceived(Self.bytes("CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n"), now: Self.t0))?.status == 403)
        // A name is checked once resolved: denied addresses are skipped, none left is 403.
        handshake = Self.started(denying)
        #expect(handshake.bytesReceived(Self.bytes("CONNECT a.test:443 HTTP/1.1\r\n\r\n"), now: Self.t0) == .resolve(host: "a.test", port: 443))
        let mixed = [Self.address("10.0.0.1", 443), Self.address("192.0.2.9", 443)]
        #expect(handshake.resolved(mixed, now: Self.t0) == .connect(mixed[1]))
        handshake = Self.started(denying)
        _ = handshake.bytesReceived(Self.bytes("CONNECT a.test:443 HTTP/1.1\r\n\r\n"), now: Self.t0)
        let refusal = Self.refusal(handshake.resolved([Self.address("10.0.0.1", 443), Self.address("::1", 443)], now: Self.t0))
        #expect(refusal?.status == 403)
        #expect(refusal?.body.contains("network") == true)
    }

    @Test func credentialsAreRequiredWhenUsersAreConfigured() {
        let settings = Self.settings {
            $0.clientConnection.proxyAuthorization = ProxyAuthorization(realm: "tests", users: ["alice": "s3cret"])
        }
        var handshake = Self.started(settings)
        let action = handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\r\n\r\n"), now: Self.t0)
        #expect(Self.refusal(action)?.status == 407)
        guard case .answer(let answer, _) = action else { return }
        #expect(String(decoding: answer.bytes, as: UTF8.self).contains("\r\nProxy-Authenticate: Basic realm=\"tests\"\r\n"))
        handshake = Self.started(settings)
        let credentials = "Proxy-Authorization: Basic " + Base64.encode(Self.bytes("alice:s3cret"))
        #expect(
            handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\r\n\(credentials)\r\n\r\n"), now: Self.t0)
                == .connect(Self.address("192.0.2.1", 443)))
    }

    @Test func connectionsOverTheCapAre503() {
        var handshake = Handshake(settings: Self.settings())
        let action = handshake.start(admitted: false, now: Self.t0)
        #expect(Self.refusal(action)?.status == 503)
        #expect(handshake.deadline == Self.t0 + Handshake.Settings.answerDrainTime)
    }

    // MARK: reaching the target

    @Test func aNameThatDoesNotResolveIs502() {
        var handshake = Self.started()
        _ = handshake.bytesReceived(Self.bytes("CONNECT nowhere.test:443 HTTP/1.1\r\n\r\n"), now: Self.t0)
        let refusal = Self.refusal(handshake.resolveFailed("not in the table", now: Self.t0))
        #expect(refusal?.status == 502)
        #expect(refusal?.body == "502 Bad Gateway: cannot resolve target: not in the table\n")
        #expect(handshake.resolved([Self.address("192.0.2.1", 443)], now: Self.t0) == .wait, "a late answer changes nothing")
    }

    @Test func everyAddressIsTriedThenRefusalIs502() {
        var handshake = Self.started()
        _ = handshake.bytesReceived(Self.bytes("CONNECT multi.test:443 HTTP/1.1\r\n\r\n"), now: Self.t0)
        let addresses = [Self.address("192.0.2.1", 443), Self.address("192.0.2.2", 443), Self.address("2001:db8::3", 443)]
        #expect(handshake.resolved(addresses, now: Self.t0) == .connect(addresses[0]))
        #expect(handshake.connectFailed(.refused, now: Self.t0) == .connect(addresses[1]))
        #expect(handshake.connectFailed(.unreachable, now: Self.t0) == .connect(addresses[2]))
        let refusal = Self.refusal(handshake.connectFailed(.refused, now: Self.t0))
        #expect(refusal?.status == 502)
        #expect(refusal?.body == "502 Bad Gateway: cannot connect to the target: connection refused\n")
    }

    @Test func theConnectTimeoutIs504WhicheverWayItShows() {
        // The timer at the deadline.
        var handshake = Self.started()
        _ = handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\r\n\r\n"), now: Self.t0)
        #expect(handshake.timerFired(now: Self.t0 + .milliseconds(2999)) == .wait, "early: nothing happens")
        #expect(Self.refusal(handshake.timerFired(now: Self.t0 + .seconds(3)))?.status == 504)
        #expect(handshake.connected() == .wait, "a connection that comes too late is dropped")

        // The last address timed out.
        handshake = Self.started()
        _ = handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\r\n\r\n"), now: Self.t0)
        #expect(Self.refusal(handshake.connectFailed(.timedOut, now: Self.t0 + .seconds(1)))?.status == 504)

        // A failure past the deadline ends it even with addresses left.
        handshake = Self.started()
        _ = handshake.bytesReceived(Self.bytes("CONNECT two.test:443 HTTP/1.1\r\n\r\n"), now: Self.t0)
        _ = handshake.resolved([Self.address("192.0.2.1", 443), Self.address("192.0.2.2", 443)], now: Self.t0)
        #expect(Self.refusal(handshake.connectFailed(.refused, now: Self.t0 + .seconds(3)))?.status == 504)

        // Resolving that outlives the deadline.
        handshake = Self.started()
        _ = handshake.bytesReceived(Self.bytes("CONNECT slow.test:443 HTTP/1.1\r\n\r\n"), now: Self.t0)
        let refusal = Self.refusal(handshake.timerFired(now: Self.t0 + .seconds(3)))
        #expect(refusal?.status == 504)
        #expect(refusal?.body.contains("resolving slow.test timed out") == true)
    }

    @Test func anIncompleteHeadTimesOutWith408() {
        var handshake = Self.started()
        _ = handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\r\n"), now: Self.t0 + .seconds(4))
        #expect(handshake.deadline == Self.t0 + .seconds(5), "the head timeout counts from the accept")
        #expect(handshake.timerFired(now: Self.t0 + .seconds(4)) == .wait)
        #expect(Self.refusal(handshake.timerFired(now: Self.t0 + .seconds(5)))?.status == 408)
    }

    // MARK: the client going away

    @Test func aClientThatHalfClosesBeforeTheConnectStillGetsItsTunnel() {
        var handshake = Self.started()
        _ = handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\r\n\r\nlast words"), now: Self.t0)
        #expect(handshake.clientClosedInput(now: Self.t0) == .wait)
        #expect(
            handshake.connected()
                == .answer(
                    .init(status: .established, bytes: Handshake.established, outcome: nil),
                    then: .relay(.init(toTarget: Self.bytes("last words"), clientInputClosed: true))))
    }

    @Test func aClientThatGoesAwayBeforeTheConnectIsLoggedAndItsConnectionDropped() {
        var handshake = Self.started()
        _ = handshake.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\r\n\r\n"), now: Self.t0)
        #expect(handshake.clientClosed() == .close(.clientClosed))
        #expect(handshake.phase == .closed)
        #expect(handshake.connected() == .wait)
        #expect(handshake.connectFailed(.refused, now: Self.t0) == .wait)
        #expect(handshake.timerFired(now: Self.t0 + .seconds(60)) == .wait)
    }

    @Test func inputEndingMidHeadIs400AndBeforeAnyByteIsAQuietClose() {
        var silent = Self.started()
        #expect(silent.clientClosedInput(now: Self.t0) == .close(nil))

        var partial = Self.started()
        _ = partial.bytesReceived(Self.bytes("CONNECT 192.0.2.1:443 HTTP/1.1\r\n"), now: Self.t0)
        let refusal = Self.refusal(partial.clientClosedInput(now: Self.t0))
        #expect(refusal?.status == 400)
        #expect(refusal?.then == .close, "nothing is left to drain")
        #expect(partial.timerFired(now: Self.t0 + .seconds(2)) == .close(nil), "a write that does not finish is bounded")
    }

    @Test func anAnsweredConnectionIsDrainedUntilTheClientClosesOrTwoSecondsPass() {
        var handshake = Self.started()
        _ = handshake.bytesReceived(Self.bytes("BREW coffee HTTP/1.1\r\n\r\n"), now: Self.t0)
        #expect(handshake.phase == .answering)
        #expect(handshake.readsClient)
        #expect(handshake.bytesReceived(Self.bytes("more"), now: Self.t0) == .read)
        #expect(handshake.timerFired(now: Self.t0 + .seconds(1)) == .wait)
        #expect(handshake.clientClosedInput(now: Self.t0 + .seconds(1)) == .close(nil))

        handshake = Self.started()
        _ = handshake.bytesReceived(Self.bytes("BREW coffee HTTP/1.1\r\n\r\n"), now: Self.t0)
        #expect(handshake.timerFired(now: Self.t0 + .seconds(2)) == .close(nil))
    }

    // MARK: tcp mode

    @Test func tcpModeConnectsAtOnceAndNeverAnswers() {
        let literal = Self.settings(mode: .tcp(destination: TargetAddress(host: "127.0.0.1", port: 7))) {
            $0.targetConnection.deniedNetworks = TargetConnectionConfiguration.defaultDeniedNetworks
        }
        var handshake = Handshake(settings: literal)
        #expect(handshake.target == "127.0.0.1:7")
        #expect(handshake.start(admitted: true, now: Self.t0) == .connect(Self.address("127.0.0.1", 7)), "not checked against denied networks")
        #expect(handshake.bytesReceived(Self.bytes("hello"), now: Self.t0) == .wait)
        #expect(handshake.connected() == .relay(.init(toTarget: Self.bytes("hello"), clientInputClosed: false)))

        handshake = Handshake(settings: literal)
        _ = handshake.start(admitted: true, now: Self.t0)
        #expect(handshake.connectFailed(.refused, now: Self.t0) == .close(.refused(.badGateway, "cannot connect to the target: connection refused")))

        handshake = Handshake(settings: literal)
        #expect(handshake.start(admitted: false, now: Self.t0) == .close(.refused(.serviceUnavailable, "too many connections")))

        var named = Handshake(settings: Self.settings(mode: .tcp(destination: TargetAddress(host: "db.test", port: 5432))))
        #expect(named.start(admitted: true, now: Self.t0) == .resolve(host: "db.test", port: 5432))
        #expect(named.timerFired(now: Self.t0 + .seconds(3)) == .close(.refused(.gatewayTimeout, "resolving db.test timed out")))
    }

    // MARK: random input

    /// Random splits of heads (valid, mutated, oversized) and garbage, with random outcomes of resolving and
    /// connecting, random client closes and timers: the machine never traps, keeps a deadline while it is not
    /// done, answers at most once, passes on exactly the bytes after the head, and ends (relay or close)
    /// within a step per byte plus a few.
    @Test func randomInputAlwaysEndsTheHandshakeInBoundedSteps() throws {
        let seed = ProcessInfo.processInfo.environment["TUNNEL_HANDSHAKE_SEED"].flatMap { UInt64($0) }
            ?? UInt64.random(in: 0...UInt64.max)
        print("TunnelHandshakeTests fuzz seed: \(seed) (rerun with TUNNEL_HANDSHAKE_SEED=\(seed))")
        var random = SplitMix64(seed: seed)
        let credentials = "Basic " + Base64.encode(Self.bytes("alice:s3cret"))
        let variants: [Handshake.Settings] = [
            Self.settings(),
            Self.settings { $0.targetConnection.deniedNetworks = TargetConnectionConfiguration.defaultDeniedNetworks },
            Self.settings {
                $0.forwardPlainHTTP = true
                $0.targetConnection.allowedPorts = [443, 80]
                $0.clientConnection.proxyAuthorization = ProxyAuthorization(users: ["alice": "s3cret"])
            },
            Self.settings(mode: .tcp(destination: TargetAddress(host: "192.0.2.1", port: 7))),
            Self.settings(mode: .tcp(destination: TargetAddress(host: "fixed.test", port: 7))),
        ]
        let pool = ["192.0.2.1", "198.51.100.7", "127.0.0.1", "10.1.2.3", "2001:db8::5", "::1"]
        var outcomes: [String: Int] = [:]
        for iteration in 0..<10_000 {
            let settings = variants[random.below(variants.count)]
            let input = Self.randomInput(&random, credentials: credentials)
            var handshake = Handshake(settings: settings)
            var now = Self.t0
            var action = handshake.start(admitted: random.below(25) != 0, now: now)
            var fed = 0
            var answers = 0
            var answered: TunnelStatus?
            var closedInput = false
            var steps = 0
            let context = "seed \(seed), iteration \(iteration)"
            while true {
                if case .answer(let answer, _) = action {
                    answers += 1
                    answered = answer.status
                    if case .fixed = settings.target { Issue.record("tcp mode answered \(answer.status) (\(context))") }
                    _ = Self.refusal(action)
                }
                if action.isTerminal { break }
                steps += 1
                try #require(steps <= input.count + 16, "no end after \(steps) steps (\(context))")
                try #require(handshake.deadline != nil, "\(handshake.phase) without a deadline (\(context))")
                now = now + .milliseconds(Int64(random.below(400)))
                // Each step either feeds at least one byte or is an event that moves the handshake on.
                let roll = random.below(100)
                if fed < input.count && roll < 70 {
                    let size = input.count < 2048 && random.below(2) == 0 ? 1 : 1 + random.below(600)
                    let chunk = input[fed..<min(input.count, fed + size)]
                    fed += chunk.count
                    action = handshake.bytesReceived(chunk, now: now)
                    continue
                }
                switch handshake.phase {
                case .head, .answering:
                    if roll % 10 == 0 {
                        action = handshake.clientClosed()
                    } else if roll % 3 == 0 && !closedInput {
                        closedInput = true
                        action = handshake.clientClosedInput(now: now)
                    } else {
                        now = max(now, handshake.deadline!)
                        action = handshake.timerFired(now: now)
                    }
                case .resolving:
                    switch roll % 6 {
                    case 0: action = handshake.resolveFailed("no such name", now: now)
                    case 1:
                        now = max(now, handshake.deadline!)
                        action = handshake.timerFired(now: now)
                    case 2: action = handshake.clientClosed()
                    default:
                        let count = random.below(5)
                        let addresses = (0..<count).map { _ in Self.address(pool[random.below(pool.count)], 443) }
                        action = handshake.resolved(addresses, now: now)
                    }
                case .connecting:
                    switch roll % 7 {
                    case 0, 1: action = handshake.connected()
                    case 2:
                        now = max(now, handshake.deadline!)
                        action = handshake.timerFired(now: now)
                    case 3: action = handshake.clientClosed()
                    case 4 where !closedInput:
                        closedInput = true
                        action = handshake.clientClosedInput(now: now)
                    default:
                        let failures: [Handshake.ConnectFailure] = [.refused, .unreachable, .timedOut, .other]
                        action = handshake.connectFailed(failures[random.below(failures.count)], now: now)
                    }
                case .idle, .relaying, .closed:
                    Issue.record("\(handshake.phase) after a non-terminal action \(action) (\(context))")
                    action = .close(nil)
                }
            }
            #expect(answers <= 1, "answered \(answers) times (\(context))")
            #expect(handshake.deadline == nil, "\(context)")
            #expect(handshake.phase == .relaying || handshake.phase == .closed, "\(context)")
            // What was sent after the head reaches the target, in order, after nothing else but a forwarded head.
            if let relay = action.relayStart, case .requested = settings.target {
                let sent = Array(input[..<fed])
                let headEnd = try #require(ProxyRequestHeadParser.endOfHead(sent), "relay without a head (\(context))")
                #expect(relay.toTarget.count >= sent.count - headEnd, "\(context)")
                #expect(relay.toTarget.suffix(sent.count - headEnd).elementsEqual(sent[headEnd...]), "\(context)")
            }
            let key: String
            switch action {
            case .answer, .relay: key = answered.map { "relay after \($0.rawValue)" } ?? "relay"
            case .close(let outcome): key = answered.map { "\($0.rawValue)" } ?? outcome?.result ?? "close"
            default: key = "other"
            }
            outcomes[key, default: 0] += 1
        }
        print("TunnelHandshakeTests fuzz outcomes: \(outcomes.sorted { $0.key < $1.key })")
        #expect(outcomes.count >= 10, "the inputs reach few outcomes: \(outcomes)")
    }

    static func randomInput(_ random: inout SplitMix64, credentials: String) -> [UInt8] {
        let targets = ["192.0.2.1:443", "example.test:443", "[2001:db8::1]:443", "127.0.0.1:22", "a.test:80", "x:0", "bad"]
        func head() -> String {
            let target = targets[random.below(targets.count)]
            var text: String
            switch random.below(4) {
            case 0: text = "GET http://\(target)/path HTTP/1.1\r\n"
            case 1: text = "CONNECT \(target) HTTP/1.0\n"
            default: text = "CONNECT \(target) HTTP/1.1\r\n"
            }
            for _ in 0..<random.below(4) {
                switch random.below(4) {
                case 0: text += "Proxy-Authorization: \(credentials)\r\n"
                case 1: text += "Host: \(target)\r\n"
                case 2: text += "X-Filler: \(String(repeating: "f", count: random.below(3) == 0 ? 17_000 : 40))\r\n"
                default: text += "Proxy-Connection: keep-alive\r\n"
                }
            }
            return text + "\r\n"
        }
        func garbage(_ count: Int) -> [UInt8] {
            (0..<count).map { _ in
                switch random.below(6) {
                case 0: UInt8(ascii: "\r")
                case 1: UInt8(ascii: "\n")
                default: UInt8(truncatingIfNeeded: random.next())
                }
            }
        }
        switch random.below(6) {
        case 0:
            return garbage(random.below(300))
        case 1:
            // A head with some bytes changed.
            var bytes = Array(head().utf8)
            for _ in 0..<(1 + random.below(3)) where !bytes.isEmpty {
                bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
            }
            return bytes + garbage(random.below(50))
        case 2:
            return []
        default:
            return Array(head().utf8) + garbage(random.below(200))
        }
    }
}

extension TunnelHandshake.Action {
    /// The relay this action starts, if any.
    var relayStart: TunnelHandshake.Relay? {
        switch self {
        case .relay(let relay), .answer(_, then: .relay(let relay)): relay
        default: nil
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a seeded generator whose runs can be repeated.

