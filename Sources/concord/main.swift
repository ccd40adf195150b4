import ArgumentParser
import Foundation
import Torch

// Progress lines must reach a pipe or log file as they happen, not when a buffer fills.
setvbuf(stdout, nil, _IOLBF, 0)
Runtime.configureDefaultThreads()
Concord.main()
