import Foundation

/// Geometry, resampling, normalisation or preprocessing failed. The description names the case and
/// channel when known, the field (or operation) concerned and the problem, e.g.
/// `preprocessing error in case 'heart_003', channel 1 (T2): affine: the world box of this channel
/// (shape [40, 40, 12]) does not overlap the reference channel 0's box; cannot resample it`.
public struct PreprocessingError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The case concerned, when known.
    public var caseName: String?
    /// The channel (modality index) concerned, when known; -1 stands for the label.
    public var channel: Int?
    /// The channel's name from dataset.json, when known.
    public var channelName: String?
    /// The field or operation: "shape", "affine", "spacing", "voxel values", "label", "crop box",
    /// "orientation", "normalization", "channels", "restore record" ...
    public var field: String
    /// What is wrong, in words.
    public var problem: String

    public init(caseName: String? = nil, channel: Int? = nil, channelName: String? = nil, field: String, problem: String) {
        self.caseName = caseName
        self.channel = channel
        self.channelName = channelName
        self.field = field
        self.problem = problem
    }

    /// The same error with case/channel context filled in where it is still missing.
    public func with(caseName: String?, channel: Int? = nil, channelName: String? = nil) -> PreprocessingError {
        var e = self
        if e.caseName == nil { e.caseName = caseName }
        if e.channel == nil { e.channel = channel }
        if e.channelName == nil { e.channelName = channelName }
        return e
    }

    public var description: String {
        var text = "preprocessing error"
        if let caseName { text += " in case '\(caseName)'" }
        if let channel {
            text += channel < 0 ? ", label" : ", channel \(channel)"
            if let channelName, !channelName.isEmpty { text += " (\(channelName))" }
        }
        return text + ": \(field): \(problem)"
    }
}

extension PreprocessingError: LocalizedError {
    public var errorDescription: String? { description }
}

/// Runs `body`, turning any error into a `PreprocessingError` carrying the given context.
func withPreprocessingContext<T>(caseName: String?, channel: Int?, channelName: String? = nil, field: String = "libtorch",
                                 _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as PreprocessingError {
        throw e.with(caseName: caseName, channel: channel, channelName: channelName)
    } catch {
        throw PreprocessingError(caseName: caseName, channel: channel, channelName: channelName,
                                 field: field, problem: String(describing: error))
    }
}
