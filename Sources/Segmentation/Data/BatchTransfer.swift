import Torch

extension TrainingBatch {
    /// Every tensor of the batch in page-locked host memory, so that its copy to a GPU can run
    /// asynchronously (what the prefetcher does ahead of time when training on CUDA).
    public func pinned() throws -> TrainingBatch {
        TrainingBatch(labeledImages: try labeledImages.map { try $0.pinMemory() }, labels: try labels.map { try $0.pinMemory() },
                      unlabeledImages: try unlabeledImages.map { try $0.pinMemory() }, paired: paired)
    }

    /// The batch on `device`; with `nonBlocking` the copies from pinned memory are queued on the
    /// device's stream and return at once (the step's first kernel waits for them on the stream).
    public func to(_ device: Device, nonBlocking: Bool, memoryFormat: MemoryFormat? = nil) throws -> TrainingBatch {
        func move(_ t: Tensor) throws -> Tensor {
            let moved = device == .cpu ? t : try t.to(device, nonBlocking: nonBlocking)
            guard let memoryFormat, moved.rank == 5 || moved.rank == 4 else { return moved }
            return try moved.contiguous(memoryFormat: memoryFormat)
        }
        return TrainingBatch(labeledImages: try labeledImages.map(move), labels: try labels.map { device == .cpu ? $0 : try $0.to(device, nonBlocking: nonBlocking) },
                             unlabeledImages: try unlabeledImages.map(move), paired: paired)
    }
}
