import Datasets
import Essentials
import Foundation
import Torch

/// The budget a plan is fitted to.
public struct PlanBudget: Codable, Sendable, Equatable {
    /// "cpu" or "cuda".
    public var device: String
    /// Peak tensor memory of one training step, bytes.
    public var memoryBytes: Int
    /// Wall time of one training step (CPU only; nil = no limit).
    public var secondsPerIteration: Double?

    public init(device: String, memoryBytes: Int, secondsPerIteration: Double? = nil) {
        self.device = device; self.memoryBytes = memoryBytes; self.secondsPerIteration = secondsPerIteration
    }
}

/// One configuration the planner considered and what it cost.
public struct PlanCandidate: Codable, Sendable, Equatable {
    public var patch: [Int]
    public var labeledBatch: Int
    public var peakBytes: Int
    public var secondsPerIteration: Double?
    /// "measured" or "estimated" (scaled from the nearest measurement).
    public var how: String
    public var fits: Bool
}

/// A plan for one method on one device: every choice and the reason for it.
public struct PlannedConfiguration: Codable, Sendable, Equatable {
    public var method: String
    public var budget: PlanBudget
    /// Target spacing in mm along the volume axes (i, j, k).
    public var targetSpacing: [Double]
    /// Patch in tensor order (D, H, W) = (k, j, i).
    public var patch: [Int]
    public var widths: [Int]
    public var strides: [[Int]]
    public var kernels: [[Int]]
    public var deepSupervision: Bool
    public var labeledBatch: Int
    public var unlabeledBatch: Int
    /// The chosen configuration's cost.
    public var peakBytes: Int
    public var secondsPerIteration: Double?
    public var how: String
    /// Choice -> why, in the order they are printed.
    public var reasons: [[String]]
    public var candidates: [PlanCandidate]

    /// Applies the plan to a configuration's patch, network topology and batch sizes.
    public func apply(to config: inout TrainingConfig, keepBatches: Bool = false) {
        config.patch = patch
        config.unet.widths = widths
        config.unet.strides = strides
        config.unet.kernels = kernels
        config.unet.deepSupervision = deepSupervision
        if !keepBatches { config.labeledBatch = labeledBatch; config.unlabeledBatch = unlabeledBatch }
    }
}

/// `DATA/plans.json`: the fingerprint and one plan per configuration ("METHOD-DEVICE").
public struct DatasetPlans: Codable, Sendable {
    public static let fileName = "plans.json"
    public var fingerprint: DatasetFingerprint
    public var configurations: [String: PlannedConfiguration]

    public static func key(method: String, device: String) -> String { "\(method)-\(device)" }

    public static func url(dataset: URL) -> URL { dataset.appendingPathComponent(fileName) }

    public static func load(dataset: URL) throws -> DatasetPlans? {
        let url = url(dataset: dataset)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do { return try JSONDecoder().decode(DatasetPlans.self, from: Data(contentsOf: url)) } catch {
            throw SegmentationError.invalidDataset(path: url.path, problem: "not a valid plans file (\(error)); delete it to plan again")
        }
    }

    public func save(dataset: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(self), to: Self.url(dataset: dataset))
    }
}

/// nnU-Net's planning, with the budget fitted by measuring rather than estimating.
///
/// - Target spacing: the median spacing per axis. If the coarsest axis is more than 3 times the
///   finest other axis (anisotropic spacing) and the median case has more than 3 times fewer
///   voxels along it than along the smallest other axis (few slices), the coarse axis takes the
///   10th percentile of its spacings instead (at least the finest other spacing), so thick-slice
///   cases are not upsampled to the thin-slice ones' resolution.
/// - Topology for a patch: stages pool an axis while its current spacing is less than twice the
///   finest current spacing and its feature map stays at least 4 voxels; an axis gets kernel size
///   3 once its spacing is within twice the finest (before that 1: slices far apart are not mixed).
///   At most `maxStages` stages. The patch is rounded up to a multiple of each axis's pooling.
/// - Widths: base (16 on the CPU, Concord's default; 32 on CUDA, nnU-Net's) doubled per stage,
///   capped (256 on the CPU, 320 on CUDA).
/// - Deep supervision when there are at least 4 stages.
/// - Patch: starts at the median shape (at target spacing), and while the configuration does not
///   fit, shrinks the axis whose patch is largest relative to the median shape by its pooling
///   divisor (nnU-Net's order). Each candidate's peak memory and step time are **measured** on
///   the CPU (`PlanMeasurement`); candidates whose estimate (scaled from the last measurement by
///   activation volume and parameter count) is far over the budget are skipped without running.
///   On CUDA the peak is not exposed to Concord: the CUDA budget is checked against an estimate
///   scaled from a CPU measurement of a small candidate (tensor sizes are the same on both).
/// - Batch: 2 + 2 (labelled + unlabelled), nnU-Net's minimum; grown (both doubled) while the
///   measured configuration still fits and a batch covers at most 5 % of the dataset's voxels.
public enum ExperimentPlanner {
    public static let anisotropyThreshold = 3.0

    /// Target spacing (i, j, k) and the reason.
    public static func targetSpacing(_ fingerprint: DatasetFingerprint) -> (spacing: [Double], reason: String) {
        var target = fingerprint.medianSpacing
        let shape = fingerprint.medianCroppedShape
        let worst = target.indices.max { target[$0] < target[$1] }!
        let others = target.indices.filter { $0 != worst }
        let anisotropicSpacing = target[worst] > anisotropyThreshold * others.map { target[$0] }.min()!
        // Voxels along the coarse axis at the target spacing vs the other axes.
        let sizes = (0..<3).map { shape[$0] * fingerprint.medianSpacing[$0] / target[$0] }
        let fewSlices = sizes[worst] * anisotropyThreshold < others.map { sizes[$0] }.min()!
        if anisotropicSpacing && fewSlices {
            let p10 = DatasetFingerprint.percentile(fingerprint.cases.map { $0.spacing[worst] }, 10)
            let floor = others.map { target[$0] }.max()! + 1e-5
            target[worst] = Swift.max(p10, floor)
            return (target, String(format: "median spacing, except axis %d (anisotropic: %.3g mm > 3 x %.3g mm with %.0f voxels vs %.0f): its 10th percentile %.3g mm",
                                   worst, fingerprint.medianSpacing[worst], others.map { target[$0] }.min()!, sizes[worst], others.map { sizes[$0] }.min()!, target[worst]))
        }
        return (target, anisotropicSpacing ? "median spacing (anisotropic, but enough slices along the coarse axis to keep its median)" : "median spacing")
    }

    /// Strides (one per stage after the first) and kernels (one per stage) for a patch, all in
    /// tensor order; spacing in tensor order.
    public static func topology(patch: [Int], spacing: [Double], maxStages: Int) -> (strides: [[Int]], kernels: [[Int]]) {
        let rank = patch.count
        var current = spacing
        var size = patch.map(Double.init)
        var kernel = (0..<rank).map { current[$0] / current.min()! < 2 ? 3 : 1 }
        var strides: [[Int]] = []
        var kernels: [[Int]] = [kernel]
        while strides.count + 1 < maxStages {
            let finest = current.min()!
            let pool = (0..<rank).map { a in current[a] / finest < 2 && size[a] >= 8 }
            guard pool.contains(true) else { break }
            let stride = pool.map { $0 ? 2 : 1 }
            for a in 0..<rank where pool[a] { current[a] *= 2; size[a] /= 2 }
            let newFinest = current.min()!
            kernel = (0..<rank).map { a in kernel[a] == 3 || current[a] / newFinest < 2 ? 3 : 1 }
            strides.append(stride)
            kernels.append(kernel)
        }
        return (strides, kernels)
    }

    public static func widths(stages: Int, base: Int, cap: Int) -> [Int] {
        (0..<stages).map { Swift.min(base << $0, cap) }
    }

    /// One candidate network for a patch wish: topology, rounded patch, widths.
    struct Shape: Hashable {
        var patch: [Int]
        var strides: [[Int]]
        var kernels: [[Int]]
        var widths: [Int]
    }

    static func shape(for wish: [Int], spacing: [Double], maxStages: Int, base: Int, cap: Int) -> Shape {
        let (strides, kernels) = topology(patch: wish, spacing: spacing, maxStages: maxStages)
        let divisors = (0..<wish.count).map { a in strides.reduce(1) { $0 * $1[a] } }
        let patch = zip(wish, divisors).map { w, d in Swift.max(d, (w + d - 1) / d * d) }
        return Shape(patch: patch, strides: strides, kernels: kernels, widths: widths(stages: strides.count + 1, base: base, cap: cap))
    }

    /// The patch wishes from the median shape down, each step shrinking the axis with the largest
    /// patch / median ratio by its divisor (never below 8 voxels).
    static func shapes(median: [Double], spacing: [Double], maxStages: Int, base: Int, cap: Int, maxPatch: Int) -> [Shape] {
        var wish = median.map { Swift.min(maxPatch, Swift.max(8, Int($0.rounded()))) }
        var out: [Shape] = []
        while true {
            let s = shape(for: wish, spacing: spacing, maxStages: maxStages, base: base, cap: cap)
            if out.last != s { out.append(s) }
            let divisors = (0..<wish.count).map { a in s.strides.reduce(1) { $0 * $1[a] } }
            let ratios = (0..<wish.count).map { Double(s.patch[$0]) / median[$0] }
            let order = wish.indices.sorted { ratios[$0] != ratios[$1] ? ratios[$0] > ratios[$1] : s.patch[$0] > s.patch[$1] }
            guard let axis = order.first(where: { s.patch[$0] - Swift.max(divisors[$0], 4) >= 8 }) else { break }
            wish = s.patch
            wish[axis] -= Swift.max(divisors[axis], 4)
        }
        return out
    }

    /// Activation volume of a shape (voxels x channels summed over stages, per batch element) and
    /// multiply-adds per voxel (the time proxy).
    static func cost(_ s: Shape) -> (activations: Double, flops: Double) {
        var voxels = Double(s.patch.reduce(1, *))
        var activations = 0.0, flops = 0.0
        for (i, w) in s.widths.enumerated() {
            if i > 0 { voxels /= Double(s.strides[i - 1].reduce(1, *)) }
            let k = Double(s.kernels[i].reduce(1, *))
            activations += 2 * voxels * Double(w)
            flops += voxels * Double(w * w) * k
        }
        return (activations, flops)
    }

    /// Plans `method` for `fingerprint` within `budget`. `log` receives progress lines.
    public static func plan(fingerprint: DatasetFingerprint, method: String, budget: PlanBudget, paired: Bool,
                            base: TrainingConfig = TrainingConfig(), log: (String) -> Void = { _ in }) throws -> PlannedConfiguration {
        guard MethodRegistry.definition(named: method) != nil else { throw SegmentationError.unknownMethod(name: method, known: MethodRegistry.names) }
        let onCPU = budget.device == "cpu"
        var reasons: [[String]] = []
        let (target, spacingReason) = targetSpacing(fingerprint)
        reasons.append(["target spacing", target.map { String(format: "%.3g", $0) }.joined(separator: " x ") + " mm (i, j, k)", spacingReason])
        // Tensor order (D, H, W) = (k, j, i).
        let spacing = Array(target.reversed())
        let median = (0..<3).map { a in fingerprint.medianCroppedShape[a] * fingerprint.medianSpacing[a] / target[a] }.reversed().map { $0 }
        let baseWidth = onCPU ? 16 : 32, cap = onCPU ? 256 : 320, maxStages = onCPU ? 5 : 6
        let shapes = Self.shapes(median: median, spacing: spacing, maxStages: maxStages, base: baseWidth, cap: cap, maxPatch: onCPU ? 128 : 256)
        let modalityNames = fingerprint.channelNames, numClasses = fingerprint.classNames.count

        func config(_ s: Shape, batch: Int) -> TrainingConfig {
            var c = base
            c.method = method
            c.patch = s.patch
            c.unet.rank = 3
            c.unet.widths = s.widths; c.unet.strides = s.strides; c.unet.kernels = s.kernels
            c.unet.deepSupervision = s.widths.count >= 4
            c.labeledBatch = batch; c.unlabeledBatch = batch
            return c
        }
        var candidates: [PlanCandidate] = []
        // Calibration: the smallest candidate, measured on the CPU.
        var reference: (shape: Shape, batch: Int, m: StepMeasurement)? = nil
        var timePoints: (Double, Double, Double, Double)? = nil
        func measure(_ s: Shape, batch: Int) throws -> StepMeasurement {
            let m = try PlanMeasurement.measure(config: config(s, batch: batch), modalityNames: modalityNames, numClasses: numClasses,
                                                paired: paired, device: .cpu)
            log(String(format: "  measured patch %@ batch %d: peak %.0f MB, %.2f s/iteration", s.patch.map(String.init).joined(separator: "x"),
                       batch, Double(m.peakBytes) / 1e6, m.secondsPerIteration))
            reference = (s, batch, m)
            return m
        }
        func estimate(_ s: Shape, batch: Int) -> (bytes: Int, seconds: Double) {
            guard let r = reference else { return (0, 0) }
            let a = cost(s), b = cost(r.shape)
            // Parameters x 4 (weights, gradients, two Adam moments) do not scale with the patch.
            let fixed = Double(r.m.parameters) * 16 * Double(s.widths.reduce(0) { $0 + $1 * $1 }) / Double(r.shape.widths.reduce(0) { $0 + $1 * $1 })
            let fixedRef = Double(r.m.parameters) * 16
            let scale = a.activations * Double(batch) / (b.activations * Double(r.batch))
            let bytes = fixed + Swift.max(0, Double(r.m.peakBytes) - fixedRef) * scale
            // Time: fixed per-step cost + cost per multiply-add, fitted through the two
            // calibration measurements (the smallest and a middle candidate) when there are two.
            let work = a.flops * Double(batch)
            if let (f1, t1, f2, t2) = timePoints, f2 > f1 {
                let slope = Swift.max(0, (t2 - t1) / (f2 - f1))
                return (Int(bytes), Swift.max(0, t1 - slope * f1) + slope * work)
            }
            return (Int(bytes), r.m.secondsPerIteration * work / (b.flops * Double(r.batch)))
        }
        func fits(bytes: Int, seconds: Double?) -> Bool {
            bytes <= budget.memoryBytes && (!onCPU || budget.secondsPerIteration == nil || (seconds ?? 0) <= budget.secondsPerIteration!)
        }
        let smallest = try measure(shapes.last!, batch: 2)
        var measured: [Shape: StepMeasurement] = [shapes.last!: smallest]
        if onCPU && shapes.count > 2 {
            // A second calibration point in the middle, for the time model (a tiny patch's step
            // time is mostly fixed cost and would extrapolate badly alone).
            let middle = shapes[shapes.count / 2]
            if Double(estimate(middle, batch: 2).bytes) <= 1.5 * Double(budget.memoryBytes) {
                let m = try measure(middle, batch: 2)
                measured[middle] = m
                timePoints = (cost(shapes.last!).flops * 2, smallest.secondsPerIteration, cost(middle).flops * 2, m.secondsPerIteration)
            }
        }
        var chosen: (shape: Shape, batch: Int, bytes: Int, seconds: Double?, how: String)? = nil
        for s in shapes {
            let e = estimate(s, batch: 2)
            // Skip without running what the estimate puts clearly over the budget: memory with a
            // 50 % margin (running it could exhaust the machine), time with 200 % (the scaling from
            // a small candidate overestimates: fixed per-step costs do not grow with the patch).
            if Double(e.bytes) > 1.5 * Double(budget.memoryBytes)
                || (onCPU && budget.secondsPerIteration.map { e.seconds > 3 * $0 } ?? false) {
                candidates.append(PlanCandidate(patch: s.patch, labeledBatch: 2, peakBytes: e.bytes, secondsPerIteration: onCPU ? e.seconds : nil,
                                                how: "estimated", fits: false))
                continue
            }
            if onCPU {
                let m = try measured[s] ?? measure(s, batch: 2)
                let ok = fits(bytes: m.peakBytes, seconds: m.secondsPerIteration)
                candidates.append(PlanCandidate(patch: s.patch, labeledBatch: 2, peakBytes: m.peakBytes, secondsPerIteration: m.secondsPerIteration,
                                                how: "measured", fits: ok))
                if ok { chosen = (s, 2, m.peakBytes, m.secondsPerIteration, "measured on the CPU"); break }
            } else {
                let ok = fits(bytes: e.bytes, seconds: nil)
                candidates.append(PlanCandidate(patch: s.patch, labeledBatch: 2, peakBytes: e.bytes, secondsPerIteration: nil, how: "estimated", fits: ok))
                if ok { chosen = (s, 2, e.bytes, nil, "estimated from a CPU measurement (CUDA peak not exposed)"); break }
            }
        }
        guard var pick = chosen else {
            let smallest = candidates.last!
            throw SegmentationError.config(String(format: "no configuration of %@ fits the budget: the smallest (patch %@, batch 2) needs %.0f MB%@; raise --memory-gb or --seconds-per-iteration",
                                                  method, smallest.patch.map(String.init).joined(separator: "x"), Double(smallest.peakBytes) / 1e6,
                                                  smallest.secondsPerIteration.map { String(format: " and %.2f s/iteration", $0) } ?? ""))
        }
        // Larger batches while they fit and a batch covers at most 5 % of the dataset's voxels.
        let datasetVoxels = fingerprint.cases.reduce(0.0) { total, c in
            total + (0..<3).reduce(1.0) { $0 * Double(c.croppedShape[$1]) * c.spacing[$1] / target[$1] }
        }
        let patchVoxels = Double(pick.shape.patch.reduce(1, *))
        var batchReason = "2 + 2, nnU-Net's minimum"
        if pick.shape == shapes.first! {
            var batch = pick.batch * 2
            while Double(batch) * patchVoxels <= 0.05 * datasetVoxels {
                let e = estimate(pick.shape, batch: batch)
                guard fits(bytes: e.bytes, seconds: e.seconds) else { break }
                let m = onCPU ? try measure(pick.shape, batch: batch) : StepMeasurement(peakBytes: e.bytes, secondsPerIteration: e.seconds, parameters: 0)
                let ok = fits(bytes: m.peakBytes, seconds: onCPU ? m.secondsPerIteration : nil)
                candidates.append(PlanCandidate(patch: pick.shape.patch, labeledBatch: batch, peakBytes: m.peakBytes,
                                                secondsPerIteration: onCPU ? m.secondsPerIteration : nil, how: onCPU ? "measured" : "estimated", fits: ok))
                guard ok else { break }
                pick.batch = batch; pick.bytes = m.peakBytes; pick.seconds = onCPU ? m.secondsPerIteration : nil
                batchReason = "\(batch) + \(batch): the whole median case fits in a patch, so larger batches while they fit the budget and cover <= 5 % of the dataset's voxels"
                batch *= 2
            }
            if pick.batch == 2 { batchReason += "; a larger batch would not fit the budget or would cover > 5 % of the dataset's voxels" }
        } else {
            batchReason += "; the patch was shrunk to fit, so the batch stays at its minimum"
        }
        let s = pick.shape
        let budgetText = String(format: "%.2f GB", Double(budget.memoryBytes) / 1e9) + (onCPU ? budget.secondsPerIteration.map { String(format: ", %.2f s/iteration", $0) } ?? "" : "")
        let coverage = zip(s.patch, median).map { String(format: "%.0f%%", 100 * min(1, Double($0) / $1)) }.joined(separator: "/")
        reasons.append(["patch", s.patch.map(String.init).joined(separator: " x ") + " (D, H, W)",
                        (s == shapes.first! ? "the median case at target spacing (" : "the largest candidate that fits \(budgetText) (") + "median \(median.map { String(format: "%.0f", $0) }.joined(separator: " x ")); covers \(coverage) of it); \(pick.how)"])
        reasons.append(["stages", "\(s.widths.count)", "pool each axis while its feature map stays >= 4 voxels and its spacing is < 2 x the finest; at most \(maxStages)"])
        reasons.append(["strides", s.strides.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: " "),
                        spacing.max()! / spacing.min()! >= 2 ? "the coarse axis is pooled only once the others reach its spacing" : "isotropic enough: every axis pooled together"])
        reasons.append(["kernels", s.kernels.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: " "),
                        "3 along axes within 2 x the finest spacing, else 1"])
        reasons.append(["widths", s.widths.map(String.init).joined(separator: "-"), "base \(baseWidth) doubled per stage, cap \(cap) (\(onCPU ? "Concord's CPU default" : "nnU-Net's"))"])
        reasons.append(["deep supervision", s.widths.count >= 4 ? "on" : "off", s.widths.count >= 4 ? "at least 4 stages" : "fewer than 4 stages leave no auxiliary output"])
        reasons.append(["batch", "\(pick.batch) + \(pick.batch)", batchReason])
        reasons.append(["cost", String(format: "peak %.0f MB", Double(pick.bytes) / 1e6) + (pick.seconds.map { String(format: ", %.2f s/iteration", $0) } ?? ""),
                        "\(pick.how), all of \(method)'s networks, budget \(budgetText)"])
        return PlannedConfiguration(method: method, budget: budget, targetSpacing: target, patch: s.patch, widths: s.widths, strides: s.strides,
                                    kernels: s.kernels, deepSupervision: s.widths.count >= 4, labeledBatch: pick.batch, unlabeledBatch: pick.batch,
                                    peakBytes: pick.bytes, secondsPerIteration: pick.seconds, how: pick.how, reasons: reasons, candidates: candidates)
    }

    /// The readable table of a plan.
    public static func table(_ plan: PlannedConfiguration, fingerprint: DatasetFingerprint) -> String {
        var lines: [String] = []
        let shape = fingerprint.medianCroppedShape.map { String(format: "%.0f", $0) }.joined(separator: " x ")
        lines.append("dataset: \(fingerprint.cases.count) cases, median cropped shape \(shape) (i, j, k), median spacing "
                     + fingerprint.medianSpacing.map { String(format: "%.3g", $0) }.joined(separator: " x ") + String(format: " mm, anisotropy %.2f", fingerprint.anisotropy))
        for s in fingerprint.intensities {
            lines.append(String(format: "  channel %@: mean %.4g, std %.4g, 0.5/50/99.5 %% %.4g / %.4g / %.4g -> %@", s.channel, s.mean, s.std,
                                s.percentile00_5, s.median, s.percentile99_5, s.normalization))
        }
        lines.append("  class voxel fractions: " + fingerprint.classNames.indices.map { k in
            String(format: "%@ %.4f", fingerprint.classNames[k], fingerprint.classFractions[String(k)] ?? 0) }.joined(separator: ", "))
        lines.append("plan for \(plan.method) on \(plan.budget.device):")
        let w0 = plan.reasons.map { $0[0].count }.max() ?? 0, w1 = plan.reasons.map { $0[1].count }.max() ?? 0
        for r in plan.reasons {
            lines.append("  " + r[0].padding(toLength: w0, withPad: " ", startingAt: 0) + "  " + r[1].padding(toLength: w1, withPad: " ", startingAt: 0) + "  " + r[2])
        }
        lines.append("  candidates (largest first):")
        for c in plan.candidates {
            lines.append(String(format: "    patch %@ batch %d: %.0f MB%@ (%@) %@", c.patch.map(String.init).joined(separator: "x"), c.labeledBatch,
                                Double(c.peakBytes) / 1e6, c.secondsPerIteration.map { String(format: ", %.2f s", $0) } ?? "", c.how, c.fits ? "fits" : "over budget"))
        }
        return lines.joined(separator: "\n")
    }

    /// The plan of `method` on `device` for the dataset: read from `DATA/plans.json` when there,
    /// else computed with `budget` (default: a quarter of physical memory, no time limit) and
    /// saved there.
    public static func planForTraining(dataset: URL, method: String, device: String, budget: PlanBudget? = nil,
                                       log: (String) -> Void) throws -> (PlannedConfiguration, DatasetFingerprint) {
        let key = DatasetPlans.key(method: method, device: device)
        var plans = try DatasetPlans.load(dataset: dataset)
        if let plans, let existing = plans.configurations[key], budget == nil || existing.budget == budget {
            log("plan: reusing \(key) from \(DatasetPlans.url(dataset: dataset).path)")
            return (existing, plans.fingerprint)
        }
        let layout = try DatasetLayout.load(root: dataset)
        let fingerprint: DatasetFingerprint
        if let plans { fingerprint = plans.fingerprint } else {
            log("plan: fingerprinting \(layout.labeled.count + layout.unlabeled.count) cases")
            fingerprint = try DatasetFingerprint.make(layout: layout)
        }
        let chosen = budget ?? defaultBudget(device: device)
        let planned = try plan(fingerprint: fingerprint, method: method, budget: chosen, paired: layout.description.pairing == .paired, log: log)
        if plans == nil { plans = DatasetPlans(fingerprint: fingerprint, configurations: [:]) }
        plans!.configurations[key] = planned
        try plans!.save(dataset: dataset)
        return (planned, fingerprint)
    }

    /// A quarter of physical memory, no time limit (CPU); 8 GB on CUDA.
    public static func defaultBudget(device: String) -> PlanBudget {
        PlanBudget(device: device, memoryBytes: device == "cpu" ? Int(ProcessInfo.processInfo.physicalMemory / 4) : 8_000_000_000)
    }
}
