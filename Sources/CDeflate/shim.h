// libdeflate (Debian's libdeflate-dev): whole-buffer gzip decompression, about twice as fast as
// zlib's streaming inflate. Used for reading .nii.gz; zlib stays for streaming and writing.
#include <libdeflate.h>
