import Foundation

/// Waits until `condition` holds, looking every `every`, for at most `timeout`; returns whether
/// it held. For state another task, thread or process changes (a refresher's swap, a socket
/// being counted, the feed catching up): the test then proceeds as soon as it holds, and a
/// deadline, not a guess, bounds it. The one place in these tests that polls.
func eventually(within timeout: Duration = .seconds(10), every: Duration = .milliseconds(10),
                _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: every)
    }
    return try await condition()
}

/// The same for code on a plain thread (`runOnThreads` workers).
func eventuallyOnThread(within seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(1_000)
    }
    return condition()
}
