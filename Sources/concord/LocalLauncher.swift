import ArgumentParser
import Foundation
import Segmentation

/// `concord train --nproc N`: starts N copies of this command on this machine as ranks 0..<N of a
/// data-parallel run (torchrun's variables, loopback rendezvous on a free port), each in its own
/// process group so a terminal's Ctrl-C reaches them once, through the launcher.
///
/// - Ctrl-C (or SIGTERM) is forwarded once to every rank: they agree on an iteration, rank 0
///   saves, all exit 130, and so does the launcher.
/// - A rank that exits with an error, or is killed, stops the run: the others notice at their
///   next collective (at most the timeout); any rank still running 10 s after that is killed.
///   The launcher exits with the first failing rank's status and names it.
enum LocalLauncher {
    static func run(worldSize: Int, arguments: [String], timeout: TimeInterval, cudaDevices: Bool) throws -> Int32 {
        let port = try LoopbackPort.free()
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = Swift.max(1, cores / worldSize)
        var children: [pid_t] = []
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        var base = ProcessInfo.processInfo.environment
        base["CONCORD_THREADS"] = base["CONCORD_THREADS"] ?? "\(threads)"
        print("launching \(worldSize) ranks on 127.0.0.1:\(port), \(threads) thread(s) each" + (cudaDevices ? ", GPU i for rank i" : ""))
        for rank in 0..<worldSize {
            var environment = base
            let launch = LaunchEnvironment(rank: rank, worldSize: worldSize, localRank: rank, masterAddress: "127.0.0.1",
                                           masterPort: port, source: "torchrun")
            for (key, value) in launch.variables { environment[key] = value }
            let pid = try spawn(executable, [executable] + arguments, environment: environment)
            children.append(pid)
        }
        // Signals to the launcher go to every rank, once.
        let signals = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { for pid in children { kill(pid, sig) } }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }

        var running = Set(children)
        var firstFailure: (rank: Int, status: Int32)?
        var failureTime: Date?
        var interruptedStatus = false
        let grace = timeout + 10
        while !running.isEmpty {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0, running.contains(pid) {
                running.remove(pid)
                let rank = children.firstIndex(of: pid) ?? -1
                let exitCode: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                if exitCode == 130 { interruptedStatus = true }
                if exitCode != 0 && exitCode != 130 && firstFailure == nil {
                    firstFailure = (rank, exitCode)
                    failureTime = Date()
                    let how = (status & 0x7f) == 0 ? "exited with status \(exitCode)" : "was killed by signal \(status & 0x7f)"
                    FileHandle.standardError.write(Data("launcher: rank \(rank) \(how); waiting up to \(Int(grace)) s for the other ranks to stop\n".utf8))
                }
                continue
            }
            if let since = failureTime, Date().timeIntervalSince(since) > grace {
                for pid in running {
                    FileHandle.standardError.write(Data("launcher: rank \(children.firstIndex(of: pid) ?? -1) still running \(Int(grace)) s after the failure: killing it\n".utf8))
                    kill(pid, SIGKILL)
                }
                failureTime = nil
            }
            usleep(50_000)
        }
        if let firstFailure {
            FileHandle.standardError.write(Data("launcher: run stopped; the first rank to exit was rank \(firstFailure.rank) (status \(firstFailure.status)); its message above names the rank that caused it\n".utf8))
            return firstFailure.status
        }
        return interruptedStatus ? 130 : 0
    }

    /// posix_spawn in a new process group (so a terminal's Ctrl-C reaches the launcher only).
    static func spawn(_ path: String, _ argv: [String], environment: [String: String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cArgs.forEach { free($0) }; cEnv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, nil, &attributes, cArgs, cEnv)
        guard result == 0 else { throw ValidationError("cannot start \(path): \(String(cString: strerror(result)))") }
        return pid
    }
}
