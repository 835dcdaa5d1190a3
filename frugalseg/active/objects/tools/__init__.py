"""The interactive tools: click-to-mask models, their graph-cut core, scissors and the superpixel brush."""
