"""The bridge backend: a TransformerLens ``TransformerBridge`` around the Hugging Face model.

The only package that imports TransformerLens's internals. :mod:`~probes.model.bridge.backend`
implements the protocol; :mod:`~probes.model.bridge.residual_catcher` reads residuals with plain
forward hooks; :mod:`~probes.model.bridge.plain_modules` swaps the bridge's components for the
modules they wrap during a read; :mod:`~probes.model.bridge.readout` is the exact float32 readout.
"""
