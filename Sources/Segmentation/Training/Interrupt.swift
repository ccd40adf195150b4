import Foundation

/// Turns Ctrl-C (SIGINT) and SIGTERM into a flag the training loop checks between iterations, so
/// the run saves a checkpoint and exits cleanly instead of dying mid-step. A second Ctrl-C exits
/// at once.
public final class InterruptFlag: @unchecked Sendable {
    public static let shared = InterruptFlag()
    private let lock = NSLock()
    private var raised = false
    private var sources: [DispatchSourceSignal] = []

    public var isRaised: Bool { lock.lock(); defer { lock.unlock() }; return raised }

    public func install() {
        guard sources.isEmpty else { return }
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                let again = self.raised
                self.raised = true
                self.lock.unlock()
                if again { FileHandle.standardError.write(Data("\ninterrupted twice: exiting now\n".utf8)); exit(130) }
                FileHandle.standardError.write(Data("\ninterrupt: saving a checkpoint, then stopping (Ctrl-C again to exit now)\n".utf8))
            }
            source.resume()
            sources.append(source)
        }
    }
}
