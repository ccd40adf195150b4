import Foundation

/// Where this process sits in a data-parallel run, as an outside launcher describes it.
///
/// - torchrun (and `concord train --nproc`): `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`,
///   `MASTER_PORT`.
/// - SLURM (`srun`): `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`; the master address from
///   `MASTER_ADDR` (or `--master-addr`), the port from `MASTER_PORT` (or `--master-port`, default
///   29500). torchrun's variables win when both are set (torchrun inside an allocation).
///
/// A world of one process is not distributed (`parse` returns nil): `srun -n 1` and plain runs
/// train as today.
public struct LaunchEnvironment: Equatable, Sendable {
    public var rank: Int
    public var worldSize: Int
    public var localRank: Int
    public var masterAddress: String
    public var masterPort: Int
    /// Which variables described the launch ("torchrun" or "slurm"), for messages.
    public var source: String

    public static let defaultPort = 29500

    public init(rank: Int, worldSize: Int, localRank: Int, masterAddress: String, masterPort: Int, source: String) {
        self.rank = rank; self.worldSize = worldSize; self.localRank = localRank
        self.masterAddress = masterAddress; self.masterPort = masterPort; self.source = source
    }

    /// The launch described by `environment`, nil for a single process.
    /// - Parameters:
    ///   - masterAddress, masterPort: command-line values, used where the variables give none.
    public static func parse(_ environment: [String: String], masterAddress: String? = nil,
                             masterPort: Int? = nil) throws -> LaunchEnvironment? {
        func integer(_ name: String) throws -> Int? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            guard let value = Int(text) else { throw SegmentationError.launch("\(name)=\(text) is not an integer") }
            return value
        }
        let source: String
        let rank: Int, worldSize: Int, localRank: Int
        if environment["RANK"] != nil || environment["WORLD_SIZE"] != nil {
            guard let r = try integer("RANK"), let w = try integer("WORLD_SIZE") else {
                throw SegmentationError.launch("RANK and WORLD_SIZE must be set together (torchrun sets both)")
            }
            source = "torchrun"
            rank = r; worldSize = w; localRank = try integer("LOCAL_RANK") ?? r
        } else if environment["SLURM_PROCID"] != nil || environment["SLURM_NTASKS"] != nil {
            guard let r = try integer("SLURM_PROCID"), let w = try integer("SLURM_NTASKS") else {
                throw SegmentationError.launch("SLURM_PROCID and SLURM_NTASKS must both be set (run under srun)")
            }
            source = "slurm"
            rank = r; worldSize = w; localRank = try integer("SLURM_LOCALID") ?? 0
        } else {
            return nil
        }
        guard worldSize >= 1 else { throw SegmentationError.launch("world size \(worldSize) (\(source)) must be at least 1") }
        guard (0..<worldSize).contains(rank) else {
            throw SegmentationError.launch("rank \(rank) is outside 0..<\(worldSize) (\(source))")
        }
        guard localRank >= 0 else { throw SegmentationError.launch("local rank \(localRank) (\(source)) is negative") }
        if worldSize == 1 { return nil }
        let address = environment["MASTER_ADDR"].flatMap { $0.isEmpty ? nil : $0 } ?? masterAddress
        guard let address else {
            throw SegmentationError.launch("\(source) launch of \(worldSize) processes: no master address; set MASTER_ADDR (rank 0's host; "
                                           + "under SLURM: export MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)) or --master-addr")
        }
        let port = try integer("MASTER_PORT") ?? masterPort ?? defaultPort
        guard (1...65535).contains(port) else { throw SegmentationError.launch("master port \(port) is outside 1...65535") }
        return LaunchEnvironment(rank: rank, worldSize: worldSize, localRank: localRank, masterAddress: address,
                                 masterPort: port, source: source)
    }

    /// The variables a child of `concord train --nproc` gets (torchrun's names).
    public var variables: [String: String] {
        ["RANK": "\(rank)", "WORLD_SIZE": "\(worldSize)", "LOCAL_RANK": "\(localRank)",
         "MASTER_ADDR": masterAddress, "MASTER_PORT": "\(masterPort)"]
    }

    /// True when every rank runs on this machine's loopback interface.
    public var isLoopback: Bool { ["127.0.0.1", "localhost", "::1"].contains(masterAddress) }
}
