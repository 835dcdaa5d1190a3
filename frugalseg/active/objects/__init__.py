"""The object-mask annotation loop (paper 002, EVA-VOS): which frame to annotate next, and how.

Each family is one module with its registry beside it, so a new member is one class and one line:

* `frame_selectors` (``SELECTORS``: random, uniform, oracle, uncertainty, diversity, gain,
  gain-decay, gain-fit, lookahead), with the diversity selector's features in `diversity_features`
  (descriptor, QNet, a timm encoder);
* `annotation_types` (mask, clicks) and the simulated annotator's corrective clicks in
  `simulated_annotator`; `type_policies` (``POLICIES``: mask, clicks, random, oracle, learned);
* `click_models` (``CLICK_MODELS``: starcut, GrabCut, SAM 2), the clicks type's click-to-mask model, with
  the weight-free cut of starcut in `graph_cut`;
* `engines` (``ENGINES``: flow, SAM 2, STM), every frame's masks from all annotated frames.

The loop itself: `state` (saved after every iteration, resumable), `loop` (one video, its curves),
`simulate` (a data set with ground truth, behind ``frugalseg annotate simulate``) and `session`
(a person on their own videos, behind ``annotate propose`` / ``annotate add``).
`training_samples` replays saved loops into the training samples of QNet and the type policy; it
sits above the loop and the run-folder reader so that nothing imports in a circle.
"""
