"""The object-mask annotation loop (paper 002, EVA-VOS): which frame to annotate next, and how.

Grouped by what a reader looks for; each family is one module with its registry beside it, so a new
member is one class and one line:

* `choosing` — `frame_selectors` (``SELECTORS``: random, uniform, oracle, uncertainty, diversity, gain,
  gain-decay, gain-fit, lookahead) with the diversity selector's features in `diversity_features`
  (descriptor, QNet, a timm encoder), and `type_policies` (``POLICIES``: mask, clicks, box, random,
  oracle, lookahead, learned, auto);
* `tools` — `click_models` (``CLICK_MODELS``: starcut, GrabCut, SAM 2), the click-to-mask model of
  every tool, with starcut's weight-free cut in `graph_cut`; the scissors and brush in `tools`;
* `session` — a person on their own videos, behind ``annotate propose`` / ``add`` and the page:
  `session`, what they give (`given`), what it proposes (`proposals`), its settings and tasks;
* `simulation` — a data set with ground truth, behind ``annotate simulate``: what each type makes and
  costs (`annotation_types`), the simulated annotator's clicks, the loop (one video, its curves), the
  runs, and `training_samples`, which replays saved loops into the samples of QNet and the type policy.

Shared by all: `state` (saved after every iteration, resumable), `engines` (``ENGINES``: flow, SAM 2,
STM; every frame's masks from all annotated frames), `options` and `labels` (a loop's labels as a store).
"""
