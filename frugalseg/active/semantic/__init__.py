"""The semantic annotation loop (paper 000, HVSA): which samples of which frames a person clicks next.

`samples` cuts frames into samples (frames, superpixels, rectangles) and chooses among them,
`click_cost` counts the clicks a person needs to label them, `loop` runs the loop on one video
(select, label, fine-tune the student, propagate), and `simulate` runs it over a data set with
ground truth (behind ``frugalseg annotate semantic``).
"""
