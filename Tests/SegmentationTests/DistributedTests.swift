import Foundation
import XCTest
@testable import Segmentation
@testable import Torch

/// Data-parallel training on c10d (Gloo, loopback, 2 CPU processes of the `concord` binary):
/// equivalence with one process, faults, resumption, the launcher's variables.
final class DistributedTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("concord-dist-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    // MARK: launcher variables

    func testTorchrunVariables() throws {
        let launch = try XCTUnwrap(LaunchEnvironment.parse(["RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1",
                                                            "MASTER_ADDR": "node0", "MASTER_PORT": "1234"]))
        XCTAssertEqual(launch, LaunchEnvironment(rank: 3, worldSize: 8, localRank: 1, masterAddress: "node0", masterPort: 1234, source: "torchrun"))
        // LOCAL_RANK defaults to RANK; the port to 29500; a world of one is not distributed.
        let single = try XCTUnwrap(LaunchEnvironment.parse(["RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h"]))
        XCTAssertEqual(single.localRank, 1)
        XCTAssertEqual(single.masterPort, 29500)
        XCTAssertNil(try LaunchEnvironment.parse(["RANK": "0", "WORLD_SIZE": "1"]))
        XCTAssertNil(try LaunchEnvironment.parse([:]))
        // The variables a --nproc child gets parse back to the same launch.
        XCTAssertEqual(try LaunchEnvironment.parse(launch.variables), launch)
    }

    func testSlurmVariables() throws {
        let launch = try XCTUnwrap(LaunchEnvironment.parse(["SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1"],
                                                           masterAddress: "gpu001", masterPort: 4000))
        XCTAssertEqual(launch, LaunchEnvironment(rank: 5, worldSize: 8, localRank: 1, masterAddress: "gpu001", masterPort: 4000, source: "slurm"))
        // MASTER_ADDR / MASTER_PORT win over the command line; torchrun's variables over SLURM's.
        let fromEnvironment = try XCTUnwrap(LaunchEnvironment.parse(["SLURM_PROCID": "0", "SLURM_NTASKS": "2", "MASTER_ADDR": "a", "MASTER_PORT": "7"],
                                                                    masterAddress: "b", masterPort: 9))
        XCTAssertEqual(fromEnvironment.masterAddress, "a")
        XCTAssertEqual(fromEnvironment.masterPort, 7)
        let both = try XCTUnwrap(LaunchEnvironment.parse(["SLURM_PROCID": "0", "SLURM_NTASKS": "4", "RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "a"]))
        XCTAssertEqual(both.source, "torchrun")
        XCTAssertEqual(both.worldSize, 2)
        XCTAssertNil(try LaunchEnvironment.parse(["SLURM_PROCID": "0", "SLURM_NTASKS": "1"]))   // srun -n 1
    }

    func testLaunchVariableErrorsSayWhatIsWrong() {
        func message(_ env: [String: String]) -> String {
            do { _ = try LaunchEnvironment.parse(env); return "no error" } catch { return String(describing: error) }
        }
        XCTAssertTrue(message(["RANK": "0"]).contains("RANK and WORLD_SIZE must be set together"))
        XCTAssertTrue(message(["RANK": "x", "WORLD_SIZE": "2"]).contains("RANK=x is not an integer"))
        XCTAssertTrue(message(["RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "a"]).contains("rank 2 is outside 0..<2"))
        XCTAssertTrue(message(["RANK": "0", "WORLD_SIZE": "0"]).contains("at least 1"))
        XCTAssertTrue(message(["RANK": "0", "WORLD_SIZE": "2"]).contains("no master address"))
        XCTAssertTrue(message(["SLURM_PROCID": "0"]).contains("SLURM_PROCID and SLURM_NTASKS"))
        XCTAssertTrue(message(["RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "a", "MASTER_PORT": "70000"]).contains("outside 1...65535"))
    }

    // MARK: through the binary

    var concord: URL { concordBinary }

    /// A tiny two-modality phantom and a config whose per-process batches are `labeled` + `unlabeled`.
    func prepare(labeled: Int, unlabeled: Int, extra: String = "", unet: String = "{widths: [4, 8, 16]}",
                 name: String = "cfg") throws -> (data: String, config: String) {
        let data = root.appendingPathComponent("data").path
        if !FileManager.default.fileExists(atPath: data + "/dataset.json") {
            let (status, output) = try runProcess(concord, ["synth", "--out", data, "--cases", "8", "--unlabeled", "4", "--size", "24", "--seed", "0"])
            XCTAssertEqual(status, 0, output)
        }
        let config = root.appendingPathComponent("\(name).yaml")
        try """
        patch: [16, 16, 16]
        unet: \(unet)
        labeledBatch: \(labeled)
        unlabeledBatch: \(unlabeled)
        validationInterval: 4
        checkpointInterval: 4
        logInterval: 2
        \(extra)
        """.write(to: config, atomically: true, encoding: .utf8)
        return (data, config.path)
    }

    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for key in ["RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"] {
            env.removeValue(forKey: key)
        }
        env["CONCORD_THREADS"] = "1"
        return env.merging(extra) { $1 }
    }

    @discardableResult
    func train(_ arguments: [String], expect status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let (terminationStatus, output) = try runProcess(concord, ["train"] + arguments, environment: environment())
        XCTAssertEqual(terminationStatus, status, "concord train \(arguments.joined(separator: " ")):\n\(output)", file: file, line: line)
        return output
    }

    func weights(_ run: String) throws -> [String: [Float]] {
        let checkpoint = try Checkpoint.read(URL(fileURLWithPath: run + "/checkpoints/last.safetensors"))
        return Dictionary(uniqueKeysWithValues: try checkpoint.model.map { ($0.0, try $0.1.to(.float32).toArray(Float.self)) })
    }

    /// A 2-rank run with per-rank batch b draws exactly the samples of a 1-rank run with batch 2b
    /// (BatchSource keys every element by its global index), and c10d averages the two halves'
    /// gradients, which for losses that are means over batch elements (Dice per sample and class,
    /// cross-entropy per voxel) is the gradient of the 2b batch. So after K SGD steps the weights
    /// agree up to float32 rounding: the two runs add the same numbers in another order (two
    /// half-batch reductions and an all-reduce instead of one reduction), about 1e-7 relative
    /// per step, which momentum carries forward; 2e-5 x (1 + |w|) bounds it with a wide margin
    /// while any sampling or averaging error (a wrong element, a sum instead of a mean) moves
    /// weights by 1e-3 or more at this learning rate.
    /// SGD rather than Adam: Adam divides by the root of the squared gradient, which turns the
    /// rounding noise of gradients that are zero in exact arithmetic (a convolution bias before
    /// instance normalisation) into full-size steps of either sign.
    func testTwoRanksEqualOneRankWithTheSummedBatch() throws {
        let sgd = "optimizer: sgd\nlearningRate: 0.01\nmomentum: 0.9"
        let two = try prepare(labeled: 1, unlabeled: 1, extra: sgd, name: "two")
        let one = try prepare(labeled: 2, unlabeled: 2, extra: sgd, name: "one")
        // Supervised, and CMC (its CSC and CAC terms are means over samples too).
        for method in ["supervised", "cmc"] {
            let runTwo = root.appendingPathComponent("two-\(method)").path, runOne = root.appendingPathComponent("one-\(method)").path
            let output = try train(["--dataset", two.data, "--method", method, "--labeled", "0.5", "--iterations", "6", "--config", two.config,
                                    "--out", runTwo, "--nproc", "2", "--dist-timeout", "30"])
            XCTAssertTrue(output.contains("2 processes (global batch 2 + 2)"), output)
            try train(["--dataset", one.data, "--method", method, "--labeled", "0.5", "--iterations", "6", "--config", one.config, "--out", runOne])
            let a = try weights(runOne), b = try weights(runTwo)
            XCTAssertEqual(Set(a.keys), Set(b.keys))
            var worst = 0.0
            for (name, wa) in a {
                let wb = try XCTUnwrap(b[name])
                for (x, y) in zip(wa, wb) { worst = max(worst, Double(abs(x - y)) / (1 + Double(abs(x)))) }
            }
            XCTAssertLessThan(worst, 2e-5, "\(method): weights of the 2-rank and the 1-rank run differ by up to \(worst) (relative)")
            // The runs did train: the weights left their (shared) initialisation.
            let validations = { (run: String) -> Int in
                ((try? String(contentsOfFile: run + "/log.jsonl", encoding: .utf8)) ?? "").components(separatedBy: "\"kind\":\"validation\"").count - 1
            }
            XCTAssertEqual(validations(runOne), validations(runTwo))
            XCTAssertGreaterThan(validations(runTwo), 0)
        }
    }

    /// Per-rank batches that cannot be compared: another method must not silently skip the test
    /// above. Here every built-in method runs two ranks (the replica check at each checkpoint
    /// fails the run if the ranks' models differ: mean teacher's EMA, PReL's teacher after the
    /// stage switch, deep supervision).
    func testEveryMethodTrainsOnTwoRanksWithIdenticalReplicas() throws {
        let setup = try prepare(labeled: 1, unlabeled: 1, extra: "cmlStage1Iterations: 4", unet: "{widths: [4, 8, 16, 32], deepSupervision: true}")
        for method in ["supervised", "cmc", "cml", "mean-teacher", "cps", "late-fusion"] {
            let run = root.appendingPathComponent("m-\(method)").path
            let output = try train(["--dataset", setup.data, "--method", method, "--labeled", "0.5", "--iterations", "8", "--config", setup.config,
                                    "--out", run, "--nproc", "2", "--dist-timeout", "30"])
            XCTAssertTrue(output.contains("done: 8 iterations"), "\(method):\n\(output)")
            if method == "cml" { XCTAssertTrue(output.contains("PReL from iteration 4"), output) }
        }
    }

    /// kill -9 of rank 1: rank 0 stops within the timeout with a message naming rank 1, the last
    /// checkpoint is intact, and a resume (launched again) finishes the run.
    func testKilledRankStopsTheOtherAndTheRunResumes() throws {
        let setup = try prepare(labeled: 1, unlabeled: 1, extra: "checkpointInterval: 2")
        let run = root.appendingPathComponent("killed").path
        let port = try LoopbackPort.free()
        let arguments = ["train", "--dataset", setup.data, "--method", "supervised", "--labeled", "0.5", "--iterations", "100000",
                         "--config", setup.config, "--out", run, "--dist-timeout", "5"]
        var ranks: [(Process, Pipe)] = []
        for rank in 0..<2 {
            let process = Process()
            process.executableURL = concord
            process.arguments = arguments
            process.environment = environment(["RANK": "\(rank)", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "\(port)"])
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            ranks.append((process, pipe))
        }
        let checkpoint = run + "/checkpoints/last.safetensors"
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: checkpoint) && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint), "no checkpoint appeared")
        Thread.sleep(forTimeInterval: 0.5)
        kill(ranks[1].0.processIdentifier, SIGKILL)
        let killed = Date()
        ranks[1].0.waitUntilExit()
        let output = String(decoding: ranks[0].1.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ranks[0].0.waitUntilExit()
        let took = Date().timeIntervalSince(killed)
        XCTAssertNotEqual(ranks[0].0.terminationStatus, 0, output)
        XCTAssertLessThan(took, 5 + 10, "rank 0 took \(took) s to stop (timeout 5 s)")
        XCTAssertTrue(output.contains("rank 1"), "the message names rank 1:\n\(output)")
        // The checkpoint on disk is valid, and the run resumes (two ranks again) to its end.
        let saved = try Checkpoint.read(URL(fileURLWithPath: checkpoint))
        let reached = try XCTUnwrap(Int(saved.metadata["iteration"] ?? ""))
        XCTAssertGreaterThan(reached, 0)
        let resumed = try train(["--dataset", setup.data, "--out", run, "--resume", "--iterations", "\(reached + 4)", "--nproc", "2", "--dist-timeout", "30"])
        XCTAssertTrue(resumed.contains("resuming from iteration \(reached)"), resumed)
        XCTAssertTrue(resumed.contains("done: \(reached + 4) iterations"), resumed)
        // One process cannot continue a 2-process run: it says so.
        let refused = try train(["--dataset", setup.data, "--out", run, "--resume", "--iterations", "\(reached + 8)"], expect: 1)
        XCTAssertTrue(refused.contains("written by a run of 2 process(es)") && refused.contains("Resume with 2 process(es)"), refused)
    }

    /// Ctrl-C on `--nproc 2` (SIGINT to the launcher): every rank stops at the same iteration,
    /// rank 0 saves, the launcher exits 130; the resumed run ends with exactly the weights of an
    /// uninterrupted 2-rank run.
    func testInterruptedTwoRankRunResumesToTheUninterruptedWeights() throws {
        let setup = try prepare(labeled: 1, unlabeled: 1)
        let iterations = 200
        let whole = root.appendingPathComponent("whole").path, parts = root.appendingPathComponent("parts").path
        let common = ["--dataset", setup.data, "--method", "mean-teacher", "--labeled", "0.5", "--iterations", "\(iterations)",
                      "--config", setup.config, "--nproc", "2", "--dist-timeout", "30"]
        let launcher = Process()
        launcher.executableURL = concord
        launcher.arguments = ["train"] + common + ["--out", parts]
        launcher.environment = environment()
        let pipe = Pipe()
        launcher.standardOutput = pipe
        launcher.standardError = pipe
        try launcher.run()
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: parts + "/checkpoints/last.safetensors") && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        kill(launcher.processIdentifier, SIGINT)
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        launcher.waitUntilExit()
        guard launcher.terminationStatus == 130 else {
            // Finished before the signal arrived: nothing to resume (the machine was fast).
            XCTAssertEqual(launcher.terminationStatus, 0, output)
            throw XCTSkip("the run finished before Ctrl-C reached it")
        }
        XCTAssertTrue(output.contains("interrupted at iteration"), output)
        try train(["--dataset", setup.data, "--out", parts, "--resume", "--nproc", "2", "--dist-timeout", "30"])
        try train(common + ["--out", whole])
        let a = try weights(whole), b = try weights(parts)
        for (name, wa) in a { XCTAssertEqual(wa, b[name], "\(name) differs between the resumed and the uninterrupted run") }
    }

    // MARK: launch errors: clear and bounded

    func rank(_ rank: Int, world: Int, port: Int, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = concord
        process.arguments = arguments
        process.environment = environment(["RANK": "\(rank)", "WORLD_SIZE": "\(world)", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "\(port)"])
        process.standardOutput = Pipe()
        process.standardError = process.standardOutput
        return process
    }

    func finish(_ process: Process) -> (Int32, String) {
        let output = String(decoding: (process.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    func testMismatchedWorldSizesAndArgumentsAreClearErrors() throws {
        let setup = try prepare(labeled: 1, unlabeled: 1)
        let base = ["train", "--dataset", setup.data, "--method", "supervised", "--config", setup.config, "--dist-timeout", "10"]
        // World sizes 2 and 3.
        var port = try LoopbackPort.free()
        var a = try rank(0, world: 2, port: port, base + ["--iterations", "4", "--out", root.appendingPathComponent("w").path])
        var b = try rank(1, world: 3, port: port, base + ["--iterations", "4", "--out", root.appendingPathComponent("w").path])
        try a.run(); try b.run()
        var (statusA, outputA) = finish(a), (statusB, outputB) = finish(b)
        XCTAssertNotEqual(statusA, 0); XCTAssertNotEqual(statusB, 0)
        XCTAssertTrue((outputA + outputB).contains("was started with world size 3, rank 0 with 2"), outputA + outputB)
        // Different arguments (iterations) on rank 1.
        port = try LoopbackPort.free()
        a = try rank(0, world: 2, port: port, base + ["--iterations", "4", "--out", root.appendingPathComponent("c").path])
        b = try rank(1, world: 2, port: port, base + ["--iterations", "5", "--out", root.appendingPathComponent("c").path])
        try a.run(); try b.run()
        (statusA, outputA) = finish(a); (statusB, outputB) = finish(b)
        XCTAssertNotEqual(statusA, 0); XCTAssertNotEqual(statusB, 0)
        XCTAssertTrue(outputB.contains("the command-line arguments of rank 1 and rank 0 differ"), outputB)
        XCTAssertTrue(outputA.contains("rank 1"), "rank 0 names the rank that failed:\n\(outputA)")
    }

    func testPortInUseAndUnreachableMasterAreClearErrors() throws {
        let setup = try prepare(labeled: 1, unlabeled: 1)
        let base = ["train", "--dataset", setup.data, "--method", "supervised", "--config", setup.config, "--iterations", "4",
                    "--out", root.appendingPathComponent("p").path, "--dist-timeout", "3"]
        // Rank 0 on a port another socket holds.
        let holder = try LoopbackPort.listening()
        defer { close(holder.fd) }
        let zero = try rank(0, world: 2, port: holder.port, base)
        try zero.run()
        let (status, output) = finish(zero)
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(output.contains("could not host the rendezvous store on port \(holder.port)"), output)
        // Rank 1 alone: nobody at the master's port; it gives up after the timeout.
        let start = Date()
        let one = try rank(1, world: 2, port: try LoopbackPort.free(), base)
        try one.run()
        let (status1, output1) = finish(one)
        XCTAssertNotEqual(status1, 0)
        XCTAssertTrue(output1.contains("could not reach the rendezvous store of rank 0"), output1)
        XCTAssertLessThan(Date().timeIntervalSince(start), 3 + 15)
    }
}
