import ArgumentParser
import Torch

Runtime.configureDefaultThreads()
Concord.main()
