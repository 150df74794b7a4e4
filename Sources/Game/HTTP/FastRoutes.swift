import Edge
import HTTPServing
import HTTPTypes
import IPAddress
import Logging
import NIOCore
import GameRules

/// The routes `FastResponseHandler` answers on the event loop instead of the router: the
/// snapshot reads and `/ip` (`RouteTable.eventLoopRoute`) and plain claims (`/claim?name=NAME`,
/// `/claim/NAME`), on HTTP/1.1, TLS and HTTP/2 alike.
///
/// Every answer is the router's answer: the same route table, the same admission
/// (`RequestAdmission.admit`, refusals included, rendered by `ErrorBody`), the same snapshot
/// bytes (`GameRoutes.snapshotAnswer`), the same claim engine, answer and refusals
/// (`ClaimResponse`, `GameRoutes.claimRefusal`), the same request metrics (`RequestMetrics`).
/// A request whose answer takes anything else — query parameters on a read, a name to decode
/// or reject, an IPv6 claim, an unattributed client, a method other than GET (HEAD for reads)
/// — returns nil before admission and goes to the router, which admits and answers it.
struct FastRoutes: Sendable {
    let routes: GameRoutes
    let admission: RequestAdmission
    let metrics: RequestMetrics
    /// Refusals by a ban rule are logged here with the request's id and client, as the router does.
    let logger: Logger

    func reply(_ request: HTTPRequest, peer: IPAddress?) -> FastReply? {
        guard let target = request.path, let peer else { return nil }
        let query = target.firstIndex(of: "?")
        let path = query.map { target[..<$0] } ?? target[...]
        guard let (route, segment) = RouteTable.eventLoopRoute(for: path) else { return nil }
        let start = RequestMetrics.now()
        switch route.answer {
        case .claim:
            return claim(request, target: target, route: route, peer: peer, start: start)
        case .clientAddress:
            guard query == nil, request.method == .get else { return nil }
            return ip(request, route: route, peer: peer, start: start).map(FastReply.answer)
        case .snapshot(let key):
            // Parameters go to the router, which validates them.
            guard query == nil, request.method == .get || request.method == .head, let key = try? key(segment) else { return nil }
            return read(request, key: key, path: String(path), route: route, peer: peer, start: start).map(FastReply.answer)
        case .computed:
            return nil
        }
    }

    // MARK: Snapshot reads

    /// `path`: the request's path, already in normal form (it matched the table exactly, and a
    /// snapshot route's segment names a snapshot).
    private func read(_ request: HTTPRequest, key: String, path: String, route: RouteTable.Route, peer: IPAddress, start: UInt64) -> FastResponseHandler.Answer? {
        guard let client = routes.clientAddress(peer: peer, headers: request.headerFields),
              let snapshot = routes.snapshotAnswer(key, request.headerFields)
        else { return nil }
        if let refusal = refusal(request, path: path, client: client) {
            return answer(refusal, request: request, client: client, path: path, route: route, start: start)
        }
        metrics.record(route: route.path, method: request.method, status: snapshot.status, since: start)
        return .init(head: HTTPResponse(status: snapshot.status, headerFields: snapshot.headers), parts: snapshot.body)
    }

    // MARK: /ip

    private func ip(_ request: HTTPRequest, route: RouteTable.Route, peer: IPAddress, start: UInt64) -> FastResponseHandler.Answer? {
        // An IPv6 client gets the router's 400.
        guard let client = routes.clientAddress(peer: peer, headers: request.headerFields), client.isIPv4 else { return nil }
        if let refusal = refusal(request, path: route.path, client: client) {
            return answer(refusal, request: request, client: client, path: route.path, route: route, start: start)
        }
        metrics.record(route: route.path, method: request.method, status: .ok, since: start)
        return .init(head: HTTPResponse(status: .ok, headerFields: GameRoutes.ipFields), body: ByteBuffer(string: "\(client)\n"))
    }

    // MARK: Claims

    /// The name of `/claim?name=NAME` (the only parameter) or `/claim/NAME` (one segment), when
    /// it needs no decoding.
    static func claimName(_ target: String) -> Substring? {
        let plain: (UInt8) -> Bool = { $0 != UInt8(ascii: "%") && $0 != UInt8(ascii: "&") && $0 != UInt8(ascii: "#") && $0 != UInt8(ascii: "?") }
        if target.hasPrefix("/claim?name=") {
            let name = target.dropFirst(12)
            // In a query, "+" may mean a space: the router decides.
            guard !name.isEmpty, name.utf8.allSatisfy({ plain($0) && $0 != UInt8(ascii: "+") }) else { return nil }
            return name
        }
        if target.hasPrefix("/claim/"), target.utf8.count > 7 {
            let name = target.dropFirst(7)
            guard name.utf8.allSatisfy({ plain($0) && $0 != UInt8(ascii: "/") }) else { return nil }
            return name
        }
        return nil
    }

    private func claim(_ request: HTTPRequest, target: String, route: RouteTable.Route, peer: IPAddress, start: UInt64) -> FastReply? {
        guard request.method == .get, let text = Self.claimName(target), let name = try? PlayerName(validating: String(text)),
              let client = routes.clientAddress(peer: peer, headers: request.headerFields), let address = client.ipv4
        else { return nil }
        let path = route.path == "/claim" ? "/claim" : RequestPath.normalized(target)
        let method = request.method
        if let refusal = refusal(request, path: path, client: client) ?? routes.claimsLimited(client) {
            return .answer(answer(refusal, request: request, client: client, path: path, route: route, start: start))
        }
        let origin = routes.intelligence?.origin(of: address) ?? .unknown
        let format = ClaimResponse.format(accept: request.headerFields.value(of: .accept))
        let engine = routes.engine
        let metrics = self.metrics
        return .deferred { done in
            engine.submit(address: address, name: name, origin: origin) { result in
                // Runs on the writer's thread: hand the result over, build the answer on the loop.
                done {
                    let answer: FastResponseHandler.Answer
                    switch result {
                    case .success(let outcome):
                        let (headers, body) = ClaimResponse.parts(address: address, name: name, origin: origin, outcome: outcome, format: format)
                        answer = .init(head: HTTPResponse(status: ClaimResponse.status(format), headerFields: headers), body: body)
                    case .failure(let error):
                        answer = Self.render(GameRoutes.claimRefusal(error), path: path)
                    }
                    metrics.record(route: route.path, method: method, status: answer.head.status, since: start)
                    return answer
                }
            }
        }
    }

    // MARK: Admission and refusals

    /// `RequestAdmission`'s refusal for this request, or nil when it is admitted.
    private func refusal(_ request: HTTPRequest, path: String, client: IPAddress) -> Refusal? {
        if case .refused(let refusal) = admission.admit(path: path, userAgent: request.headerFields.value(of: .userAgent), client: client, logger: logger) {
            return refusal
        }
        return nil
    }

    /// A refusal answered here: counted, logged like the router logs it (the request's id and
    /// client), and written as the router writes it.
    private func answer(_ refusal: Refusal, request: HTTPRequest, client: IPAddress, path: String, route: RouteTable.Route, start: UInt64) -> FastResponseHandler.Answer {
        metrics.record(route: route.path, method: request.method, status: refusal.status, since: start)
        var answer = Self.render(refusal, path: path)
        guard refusal.bannedBy != nil else { return answer }
        let id = RequestID.acceptable(request.headerFields.value(of: RequestID.field)) ?? RequestID.next()
        answer.head.headerFields[RequestID.field] = id
        var logger = self.logger
        logger[metadataKey: "request_id"] = "\(id)"
        logger[metadataKey: "client"] = "\(client)"
        refusal.log(to: logger)
        return answer
    }

    /// A refusal as the router writes it (`ErrorBody`).
    static func render(_ refusal: Refusal, path: String) -> FastResponseHandler.Answer {
        let (headers, body) = ErrorBody.parts(status: refusal.status, headers: refusal.headers, message: refusal.message, json: ErrorBody.isJSON(path: path))
        return .init(head: HTTPResponse(status: refusal.status, headerFields: headers), body: ByteBuffer(string: body))
    }
}
