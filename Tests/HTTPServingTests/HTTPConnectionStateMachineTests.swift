import NIOCore
import Testing
@testable import HTTPServing
import Edge

/// The connection rules fed as events, with time passed in: no channel, no timers.
@Suite struct HTTPConnectionStateMachineTests {
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func machine(_ limits: HTTPConnectionStateMachine.Limits = .init(maxRequests: 100), stream: Bool = false) -> HTTPConnectionStateMachine {
        HTTPConnectionStateMachine(limits: limits, isStream: stream, now: t0)
    }

    /// A bodiless request read in full and admitted.
    static func request(_ m: inout HTTPConnectionStateMachine, at now: NIODeadline, admit: Bool = true, close: Bool = false) -> [HTTPConnectionStateMachine.ReadAction] {
        [m.headRead(contentLength: nil, wantsClose: close, now: now) { admit }, m.endRead(now: now)]
    }

    @Test func timersStartOnlyForConnectionsNotStreams() {
        let limits = HTTPConnectionStateMachine.Limits(maxRequests: 10, maxLifetime: .seconds(600), idleTimeout: .seconds(30), firstHeadTimeout: .seconds(5))
        let timers = Self.machine(limits).timers(now: Self.t0)
        #expect(timers.map(\.0) == [.idle, .firstHead, .lifetime])
        #expect(timers.map(\.1) == [Self.t0 + .seconds(30), Self.t0 + .seconds(5), Self.t0 + .seconds(600)])
        #expect(Self.machine(limits, stream: true).timers(now: Self.t0).isEmpty)
    }

    @Test func idlenessCountsFromTheLastActivityAndNotWhileAnswering() {
        var m = Self.machine(.init(maxRequests: 100, idleTimeout: .seconds(30)))
        #expect(Self.request(&m, at: Self.t0 + .seconds(20)) == [.forward, .forward])
        // Owed an answer: never idle, however long the application takes.
        #expect(m.timerFired(.idle, now: Self.t0 + .seconds(90)) == .checkAgain(at: Self.t0 + .seconds(120)))
        _ = m.responseHeadWritten(askedToClose: false, nearCapacity: false)
        #expect(m.responseEndWritten(now: Self.t0 + .seconds(100)) == false)
        #expect(m.timerFired(.idle, now: Self.t0 + .seconds(120)) == .checkAgain(at: Self.t0 + .seconds(130)))
        #expect(m.timerFired(.idle, now: Self.t0 + .seconds(130)) == .close)
    }

    @Test func aHeadWithoutItsEndIsIdleToo() {
        var m = Self.machine(.init(maxRequests: 100, idleTimeout: .seconds(30)))
        _ = m.headRead(contentLength: nil, wantsClose: false, now: Self.t0) { true }
        #expect(m.timerFired(.idle, now: Self.t0 + .seconds(30)) == .close, "slowloris: a head whose end never comes")
    }

    @Test func theFirstHeadTimerClosesOnlyAConnectionThatNeverAsked() {
        var quiet = Self.machine()
        #expect(quiet.timerFired(.firstHead, now: Self.t0 + .seconds(5)) == .close)
        var started = Self.machine()
        _ = started.headRead(contentLength: nil, wantsClose: false, now: Self.t0) { true }
        #expect(started.timerFired(.firstHead, now: Self.t0 + .seconds(5)) == .none)
    }

    @Test func theLastAllowedAnswerAndAnAnswerNearTheCapCarryClose() {
        var m = Self.machine(.init(maxRequests: 2))
        _ = Self.request(&m, at: Self.t0)
        #expect(m.responseHeadWritten(askedToClose: false, nearCapacity: false) == false)
        #expect(m.responseEndWritten(now: Self.t0) == false)
        _ = Self.request(&m, at: Self.t0)
        #expect(m.responseHeadWritten(askedToClose: false, nearCapacity: false) == true, "the second of two")
        #expect(m.responseEndWritten(now: Self.t0) == true)
        var capped = Self.machine()
        _ = Self.request(&capped, at: Self.t0)
        #expect(capped.responseHeadWritten(askedToClose: false, nearCapacity: true) == true)
        var stream = Self.machine(.init(maxRequests: 1), stream: true)
        _ = Self.request(&stream, at: Self.t0)
        #expect(stream.responseHeadWritten(askedToClose: true, nearCapacity: true) == false, "HTTP/2 streams have no Connection header")
    }

    @Test func lifetimeClosesAnIdleConnectionAtOnceAndABusyOneAfterItsAnswer() {
        var idle = Self.machine()
        #expect(idle.timerFired(.lifetime, now: Self.t0) == .close)
        var busy = Self.machine()
        _ = Self.request(&busy, at: Self.t0)
        #expect(busy.timerFired(.lifetime, now: Self.t0) == .none)
        #expect(busy.responseHeadWritten(askedToClose: false, nearCapacity: false) == true)
        #expect(busy.responseEndWritten(now: Self.t0) == true)
    }

    @Test func bodiesOverTheLimitAreRefusedOrCutOff() {
        var declared = Self.machine(.init(maxRequests: 10, maxBodyBytes: 100))
        var admitted = false
        #expect(declared.headRead(contentLength: 101, wantsClose: false, now: Self.t0) { admitted = true; return true }
                == .refuse(.bodyTooLarge(declared: 101, limit: 100), close: true))
        #expect(!admitted, "no budget is taken for a refused request")
        #expect(declared.bodyRead(bytes: 101, now: Self.t0) == .drop)
        #expect(declared.endRead(now: Self.t0) == .drop)
        var chunked = Self.machine(.init(maxRequests: 10, maxBodyBytes: 100))
        #expect(chunked.headRead(contentLength: nil, wantsClose: false, now: Self.t0) { true } == .forward)
        #expect(chunked.bodyRead(bytes: 60, now: Self.t0) == .forward)
        #expect(chunked.bodyRead(bytes: 60, now: Self.t0) == .close)
    }

    @Test func overBudgetIs503ThatKeepsTheConnectionUnlessAnswersAreOwed() {
        var m = Self.machine()
        #expect(Self.request(&m, at: Self.t0, admit: false) == [.refuse(.busy, close: false), .drop])
        #expect(Self.request(&m, at: Self.t0, admit: false, close: true) == [.refuse(.busy, close: true), .drop])
        // Behind an answer still owed, a refusal cannot be written first: answer, then hang up.
        #expect(Self.request(&m, at: Self.t0) == [.forward, .forward])
        #expect(Self.request(&m, at: Self.t0, admit: false) == [.drop, .drop])
        #expect(m.responseHeadWritten(askedToClose: false, nearCapacity: false) == true)
        #expect(HTTPConnectionStateMachine.Refusal.busy.retryAfter == 1)
        #expect(HTTPConnectionStateMachine.Refusal.busy.message == "server busy; retry in 1 s")
    }

    @Test func anOversizedHeadGets431UnlessAnswersAreOwed() {
        var m = Self.machine()
        #expect(m.headerOverflow() == .refuse(.headTooLarge, close: true))
        _ = Self.request(&m, at: Self.t0)
        #expect(m.headerOverflow() == .forward)
    }
}
