// Datasets: the dataset contract, splits and the phantom.
