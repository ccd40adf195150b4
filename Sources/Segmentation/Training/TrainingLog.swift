import Foundation

/// `RUN/log.jsonl`: one JSON object per line, appended and flushed as training goes, so a killed
/// run keeps everything up to its last line. Kinds: "train" (iteration, lr, elapsed_s, losses),
/// "validation" (iteration, elapsed_s, dice: {mean, classes}), "event" (iteration, message).
public final class TrainingLog {
    let handle: FileHandle
    public let url: URL

    public init(url: URL) throws {
        self.url = url
        if !FileManager.default.fileExists(atPath: url.path) {
            // A failure shows up as the error of opening it just below.
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    /// A log that keeps nothing (ranks other than 0 of a data-parallel run).
    public static func discarding() throws -> TrainingLog { try TrainingLog(url: URL(fileURLWithPath: "/dev/null")) }

    public func write(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        handle.write(data + Data("\n".utf8))
    }

    public func train(iteration: Int, lr: Double, elapsed: Double, losses: [(String, Double)], extra: [String: Any] = [:]) {
        var line: [String: Any] = ["kind": "train", "iteration": iteration, "lr": lr, "elapsed_s": elapsed,
                                   "losses": Dictionary(losses.map { ($0.0, $0.1.isFinite ? $0.1 : -1) }, uniquingKeysWith: { a, _ in a })]
        for (k, v) in extra { line[k] = v }
        write(line)
    }

    public func validation(iteration: Int, elapsed: Double, meanDice: Double, classDice: [Int: Double], extra: [String: Any] = [:]) {
        var dice: [String: Any] = ["mean": meanDice, "classes": Dictionary(classDice.map { ("\($0.key)", $0.value) }, uniquingKeysWith: { a, _ in a })]
        for (k, v) in extra { dice[k] = v }
        write(["kind": "validation", "iteration": iteration, "elapsed_s": elapsed, "dice": dice])
    }

    public func event(iteration: Int, _ message: String) {
        write(["kind": "event", "iteration": iteration, "message": message])
    }

    /// Drops lines past `iteration` (a resumed run replays them) and any truncated last line.
    public static func truncate(url: URL, after iteration: Int) throws {
        guard let data = FileManager.default.contents(atPath: url.path), let text = String(data: data, encoding: .utf8) else { return }
        var kept: [Substring] = []
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if let it = object["iteration"] as? Int, it > iteration { continue }
            kept.append(line)
        }
        let joined = kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")
        try Data(joined.utf8).write(to: url, options: .atomic)
    }
}
