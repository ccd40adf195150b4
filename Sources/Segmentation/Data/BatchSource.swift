import Essentials
import Foundation
import Torch

/// Builds the training batch of each iteration from prepared cases.
///
/// The batch of iteration i is a pure function of (seed, i): a resumed run sees exactly the
/// batches the uninterrupted run would have seen. Each batch element is drawn from its own
/// generator keyed by (seed, i, part, global element index), where the global index of element j
/// on data-parallel rank r is r x (per-rank batch) + j: the ranks of a distributed run together
/// draw exactly the elements of a one-process run whose batch is their sum. Paired mode crops all modalities of one case at
/// the same place (one spatial augmentation for all channels and the label). Unpaired mode draws,
/// for every batch element, one case per modality among the cases where that modality is present
/// (different patients), each with its own label; a modality without unlabelled cases takes its
/// unlabelled images from its labelled cases (labels unused).
public final class BatchSource: @unchecked Sendable {
    public let labeled: [PreparedCase]
    public let unlabeled: [PreparedCase]
    public let labeledBatch: Int
    public let unlabeledBatch: Int
    public let paired: Bool
    public let sampler: PatchSampler
    public let augmentation: Augmentation
    public let seed: UInt64
    let foreground: [PatchSampler.ForegroundIndex]
    public let modalities: Int
    /// This process's data-parallel rank: its elements are the global indices
    /// rank x batch ..< (rank + 1) x batch of each part.
    public let rank: Int

    public init(labeled: [PreparedCase], unlabeled: [PreparedCase], labeledBatch: Int, unlabeledBatch: Int, paired: Bool,
                sampler: PatchSampler, augmentation: Augmentation, seed: UInt64, rank: Int = 0) throws {
        precondition(rank >= 0)
        self.rank = rank
        guard let first = labeled.first else { throw SegmentationError.incompatibleData("training needs at least one labelled case") }
        modalities = first.modalities
        self.labeled = labeled; self.unlabeled = unlabeled
        self.labeledBatch = labeledBatch; self.unlabeledBatch = unlabeled.isEmpty ? 0 : unlabeledBatch
        self.paired = paired; self.sampler = sampler; self.augmentation = augmentation; self.seed = seed
        foreground = try labeled.map { try PatchSampler.ForegroundIndex(label: $0.label) }
        if !paired {
            for m in 0..<modalities where !labeled.contains(where: { $0.present[m] }) {
                throw SegmentationError.incompatibleData("unpaired training: no labelled case has modality \(m)")
            }
        }
    }

    /// The batch of iteration `iteration`.
    public func batch(iteration: Int) throws -> TrainingBatch {
        let (li, ll) = try part(cases: labeled, count: labeledBatch, withLabels: true, iteration: iteration)
        var ui: [Tensor] = []
        if unlabeledBatch > 0 { ui = try part(cases: unlabeled, count: unlabeledBatch, withLabels: false, iteration: iteration).0 }
        return TrainingBatch(labeledImages: li, labels: ll, unlabeledImages: ui, paired: paired)
    }

    /// Per-modality images (B, 1, patch...) and labels (B, patch...).
    func part(cases: [PreparedCase], count: Int, withLabels: Bool, iteration: Int) throws -> ([Tensor], [Tensor]) {
        var images: [[Tensor]] = Array(repeating: [], count: modalities)
        var labels: [[Tensor]] = Array(repeating: [], count: modalities)
        for element in 0..<count {
            let global = rank * count + element
            var rng = SeededGenerator(seed: seed, stream: [SeededGenerator.key("BATCH"), UInt64(iteration),
                                                           SeededGenerator.key(withLabels ? "LABELED" : "UNLABEL"), UInt64(global)])
            if paired {
                let index = rng.below(cases.count)
                let (x, y) = try sample(cases[index], foreground: withLabels ? foreground[index] : nil, rng: &rng)
                for m in 0..<modalities {
                    images[m].append(try x.narrow(dim: 0, start: m, length: 1))
                    if let y { labels[m].append(y) }
                }
            } else {
                for m in 0..<modalities {
                    // A modality with no unlabelled case (e.g. a CT cohort with extra unlabelled
                    // scans and a small, fully labelled MR cohort) draws its unlabelled images from
                    // its labelled cases, without their labels.
                    var pool = cases
                    if !withLabels && !pool.contains(where: { $0.present[m] }) { pool = labeled }
                    let candidates = pool.indices.filter { pool[$0].present[m] }
                    guard !candidates.isEmpty else { throw SegmentationError.incompatibleData("no case has modality \(m)") }
                    let index = candidates[rng.below(candidates.count)]
                    let (x, y) = try sample(pool[index], foreground: withLabels ? foreground[index] : nil, rng: &rng)
                    images[m].append(try x.narrow(dim: 0, start: m, length: 1))
                    if withLabels, let y { labels[m].append(y) }
                }
            }
        }
        let stackedImages = try images.map { try Tensor.stack($0, dim: 0) }
        let stackedLabels = withLabels ? try labels.map { try Tensor.stack($0, dim: 0) } : []
        return (stackedImages, stackedLabels)
    }

    func sample(_ c: PreparedCase, foreground: PatchSampler.ForegroundIndex?, rng: inout SeededGenerator) throws -> (Tensor, Tensor?) {
        let origin = sampler.origin(shape: c.spatialShape, foreground: foreground, rng: &rng)
        let x = try sampler.crop(c.images, origin: origin)
        let y = try c.label.map { try sampler.crop($0.unsqueeze(dim: 0), origin: origin).squeeze(dim: 0) }
        return try augmentation(image: x, label: y, rng: &rng)
    }
}

/// Builds batches ahead of the trainer on a background thread, at most `depth` in memory.
public final class BatchPrefetcher: @unchecked Sendable {
    let source: BatchSource
    let queue = DispatchQueue(label: "concord.prefetch")
    let lock = NSCondition()
    var ready: [Int: Result<TrainingBatch, Error>] = [:]
    var nextToBuild: Int
    let end: Int
    let depth: Int
    /// Pin each batch (page-locked memory) as it is built, for asynchronous copies to a GPU.
    let pinMemory: Bool
    var stopped = false

    public init(source: BatchSource, from start: Int, to end: Int, depth: Int = 2, pinMemory: Bool = false) {
        self.source = source; self.nextToBuild = start; self.end = end; self.depth = depth; self.pinMemory = pinMemory
        queue.async { [weak self] in self?.produce() }
    }

    func produce() {
        while true {
            lock.lock()
            while !stopped && ready.count >= depth { lock.wait() }
            if stopped || nextToBuild >= end { lock.unlock(); return }
            let i = nextToBuild
            nextToBuild += 1
            lock.unlock()
            let result = Result { () throws -> TrainingBatch in
                let batch = try source.batch(iteration: i)
                return pinMemory ? try batch.pinned() : batch
            }
            lock.lock()
            ready[i] = result
            lock.broadcast()
            lock.unlock()
        }
    }

    /// The batch of `iteration` (iterations must be requested in order).
    public func batch(iteration: Int) throws -> TrainingBatch {
        lock.lock()
        defer { lock.unlock() }
        while ready[iteration] == nil {
            if stopped { throw TorchError("prefetcher stopped") }
            lock.wait()
        }
        let result = ready.removeValue(forKey: iteration)!
        lock.broadcast()
        return try result.get()
    }

    public func stop() {
        lock.lock(); stopped = true; lock.broadcast(); lock.unlock()
    }

    deinit { stop() }
}
