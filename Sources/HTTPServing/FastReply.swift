public import Edge
/// What a fast path gives for a request: an answer now, or one that comes later (a claim
/// waits for its group commit). `deferred` starts the work and calls `done` exactly once, from
/// any thread, with a closure that makes the answer; that closure runs on the connection's
/// event loop (not on the thread that finished the work, a group-commit writer with many
/// answers to hand out). The connection reads nothing further until then, so answers keep
/// their order.
public enum FastReply: Sendable {
    public typealias Done = @Sendable (_ makeAnswer: @escaping @Sendable () -> FastResponseHandler.Answer) -> Void
    case answer(FastResponseHandler.Answer)
    case deferred(@Sendable (_ done: @escaping Done) -> Void)
}
