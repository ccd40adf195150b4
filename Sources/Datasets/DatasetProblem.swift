import Foundation

/// One problem found in a dataset folder, naming the file (relative to the dataset root).
public struct DatasetProblem: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// dataset.json missing, unreadable or inconsistent.
        case description
        /// A folder the description needs is missing.
        case missingFolder
        /// A channel file a case needs is missing.
        case missingChannel
        /// A channel file present although channels_present says the channel is absent.
        case unexpectedChannel
        /// A file whose name does not follow CASE_XXXX<file_ending> / CASE<file_ending>.
        case badFileName
        /// A NIfTI-looking file whose ending differs from file_ending.
        case wrongEnding
        /// A file that is not part of the layout (ignored).
        case strayFile
        /// labelsTr/CASE without imagesTr/CASE_XXXX.
        case labelWithoutImages
        /// imagesTr/CASE_XXXX without labelsTr/CASE.
        case imagesWithoutLabel
        /// The same case name in two folders.
        case duplicateCase
        /// numTraining / numUnlabeled disagree with the files.
        case countMismatch
        /// The NIfTI reader failed (its error is the message).
        case unreadable
        /// A 4D (or higher) image where a 3D one is needed.
        case notThreeD
        /// Channel shapes disagree and the affines do not place them over a common world region.
        case geometryMismatch
        /// Label map shape differs from channel 0 (or its geometry differs).
        case labelShapeMismatch
        /// Label values outside the declared labels, or not integers.
        case undeclaredLabel
        /// NaN or infinite voxels.
        case nonFinite
        /// A label map with only background.
        case emptyLabel
    }

    public enum Severity: String, Codable, Sendable {
        /// The case (or dataset) cannot be used.
        case error
        /// Suspicious but usable.
        case warning
    }

    /// Path relative to the dataset root (e.g. "imagesTr/heart_003_0001.nii.gz"), or "." for the folder.
    public var file: String
    public var kind: Kind
    public var severity: Severity
    public var message: String

    public init(file: String, kind: Kind, severity: Severity = .error, message: String) {
        self.file = file
        self.kind = kind
        self.severity = severity
        self.message = message
    }

    public var description: String { "\(severity == .warning ? "warning: " : "")\(file): \(message)" }
}

/// A dataset that cannot be used, with every problem found.
public struct DatasetError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var root: String
    public var problems: [DatasetProblem]

    public init(root: String, problems: [DatasetProblem]) {
        self.root = root
        self.problems = problems
    }

    public var description: String {
        let errors = problems.filter { $0.severity == .error }
        var s = "dataset \(root): \(errors.count) problem\(errors.count == 1 ? "" : "s")"
        for p in problems { s += "\n  " + p.description }
        return s
    }

    public var errorDescription: String? { description }
}
