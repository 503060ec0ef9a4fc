"""caffemem: where a Caffe net's memory goes.

Caffe prints ``Memory required for data: N`` while it builds a net; that figure only sums
forward top blobs.  caffemem rebuilds the net the way ``Net::Init`` does, reproduces that
figure to the byte, and models everything else Caffe really allocates.
"""

__version__ = "0.1.0"
