"""What the tests (and the benchmarks, from a source checkout) need around the engine.

A loopback RTSP server and its controller, frame stamps, a local Ray cluster, the alert load
publisher and consumer, and where the shared assets are. None of it is installed with the package.
"""
