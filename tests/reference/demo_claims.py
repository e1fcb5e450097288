"""The number each ``kb run`` demo's reading rests on, as a check on the demo's metrics.

``CLAIMS[method](metrics) -> bool``: one claim per runnable method. Each encodes what the committed
reading (figures/method/<method>.json) says, with a margin: an ordering between metrics, a ratio to a
chance or baseline metric, or a bound at least twice as far from the committed value as it needs to be,
never the committed value itself. The comment above each claim quotes the part of the reading it checks.
"""

from __future__ import annotations

from typing import Callable

Metrics = dict[str, float]


def _on_shape(factor: float) -> Callable[[Metrics], bool]:
    """Attribution maps: the share of mass on the shape is ``factor`` times the share of the image it covers
    (the reading says "concentrates on the object" above 2x)."""
    return lambda m: m["mass_on_shape"] >= factor * m["shape_area"]


def _knn_clean(m: Metrics) -> bool:
    # "X% of each point's 5 nearest neighbours in the 2-D map share its class: the layer separates the three classes cleanly"
    return m["knn_class_agreement"] >= 0.8  # chance is about 0.35 (three classes, majority 0.39)


def _similar_layers(m: Metrics) -> bool:
    # "Corresponding hidden layers score 0.90 (CKA) / 0.92 (RSA) on average against 0.66 / 0.63 for non-corresponding pairs"
    return m["matching_layers"] - m["other_pairs"] >= 0.1 and m["matching_layers"] >= 0.7


def _recovery(clean: float, corrupted: float, restored: float) -> float:
    return (restored - corrupted) / (clean - corrupted)


CLAIMS: dict[str, Callable[[Metrics], bool]] = {
    # "Ablating layer 2 head 1 costs the most (1.18 nats)"
    "ablation": lambda m: m["drop_L2H1"] == max(v for k, v in m.items() if k.startswith("drop_"))
    and m["drop_L2H1"] >= 0.5,
    # "Its ALE curves follow the centred truth: the largest deviation ... is 0.011 for x0, 0.044 for x1 and 0.001 for x4;
    #  the second-order ALE of (x2, x3) correlates at r = 0.999 with the saddle; for (x0, x1) it stays within ±0.03;
    #  ALE and partial dependence agree"
    "accumulated-local-effects": lambda m: m["max_error_x0"] <= 0.05 and m["max_error_x1"] <= 0.1
    and m["max_error_x4"] <= 0.02 and m["pair_23_correlation"] >= 0.95 and m["pair_01_max"] <= 0.1
    and m["ale_pd_correlation_min"] >= 0.95,
    # "The network assigns them probabilities 1.00, 1.00, 1.00"
    "activation-maximization": lambda m: all(m[f"p_{c}"] >= 0.9 for c in range(3)),
    # "falls from -1.14 to -3.83 ... The largest single-cell recovery, to -3.48 ... single cells recover little"
    "activation-patching": lambda m: m["corrupted"] <= m["clean"] - 1.0
    and 0 < _recovery(m["clean"], m["corrupted"], m["best_cell"]) <= 0.5,
    # "7 of 8 rows get such a rule ... precision 0.97; 100% of the features the rules use are among x0-x3"
    "anchors": lambda m: m["n_anchored"] >= 5 and m["mean_precision"] >= 0.9
    and m["share_informative_features"] >= 0.8,
    # "(chance 0.07). Layer-2 heads score 0.85, 0.87, layer-1 heads 0.11, 0.00: ... an induction head"
    "attention-pattern-analysis": lambda m: m["prefix_matching_layer2_max"] >= 5 * m["chance"]
    and m["prefix_matching_layer2_max"] >= 3 * m["prefix_matching_layer1_max"],
    # "positions draw 0.35 of their rollout mass on average from the token after the earlier occurrence"
    # (a uniform spread over the ~10-20 visible positions would give 0.05-0.1)
    "attention-rollout": lambda m: m["mass_on_induction_source"] >= 0.15,
    # "8 attractors share the space, 100% of samples reach one ... one per stored bit pattern"
    "attractor-landscapes": lambda m: m["n_attractors"] == 8 and m["fraction_converged"] >= 0.9,
    # "For 100% of the nine second-copy logits the strongest incoming edge comes from the token after the earlier
    #  occurrence (edge 4.5). Zeroing ... layer-2 heads leaves 0.04 of it; zeroing layer-1 attention leaves 4.8
    #  ... (replacement score 0.98, completeness 0.99)"
    "attribution-graphs": lambda m: m["top_edge_is_induction_source"] >= 0.8
    and m["edge_without_layer2_attention"] <= 0.25 * m["mean_edge"]
    and m["edge_without_layer1_attention"] >= 0.5 * m["mean_edge"]
    and m["replacement"] >= 0.9 and m["completeness"] >= 0.9,
    # "the same head comes out on top, but the sign is wrong for L1H1. Per position ... correlate at r = 0.55"
    "attribution-patching": lambda m: m["same_top_head"] == 1
    and max(("L1H0", "L1H1", "L2H0", "L2H1"), key=lambda h: m[f"exact_{h}"]) == "L2H1"
    and m["estimate_L1H1"] > 0 > m["exact_L1H1"] and m["position_correlation"] >= 0.25,
    # "The search keeps 2 of 4 heads ...; with the rest patched the KL is 0.32 nats, against 0.89 when every head is corrupted"
    "automated-circuit-discovery": lambda m: 1 <= m["n_kept"] <= 3
    and m["kl_circuit"] <= 0.6 * m["kl_all_corrupted"],
    # "the 64 neurons ... reach a mean simulation score of 0.33 and detection 0.84; the 64 live latents ... 0.36 and 0.82"
    # (detection is balanced top against least activating excerpts: chance 0.5; simulation is a correlation: chance 0)
    "automated-interpretability": lambda m: m["neuron_detection_mean"] >= 0.7 and m["latent_detection_mean"] >= 0.7
    and m["neuron_simulation_mean"] >= 0.15 and m["latent_simulation_mean"] >= 0.15,
    # "the share of each map's mass on the shape (which covers 5% of the image) is 23%, 26%, 25%, 33%, 21%;
    #  ... deletion AUCs ... within 0.001 of each other: every variant puts its top pixels on the shape"
    "cam-variants": lambda m: all(v >= 0.1 for k, v in m.items() if k.startswith("share_"))
    and (max(v for k, v in m.items() if k.startswith("deletion_auc_"))
         - min(v for k, v in m.items() if k.startswith("deletion_auc_"))) <= 0.02,
    # "Removing x3, which decides class 2, drops accuracy from 0.96 to 0.87 ...; removing x6 ... leaves 0.96"
    "causal-probing": lambda m: m["accuracy_before"] - m["accuracy_without_x3"] >= 0.04
    and abs(m["accuracy_before"] - m["accuracy_without_x6"]) <= 0.02,
    # "'Only layer 2 matters' keeps 99%; resampling layer-1 head 0 or 1 alone keeps 99% and 99%; 'only layer 1
    #  matters' keeps 4%, and resampling the stronger induction head alone keeps 49%"
    "causal-scrubbing": lambda m: m["fraction_only_layer_2_matters"] >= 0.9
    and m["fraction_layer_1_head_0_is_irrelevant"] >= 0.9 and m["fraction_layer_1_head_1_is_irrelevant"] >= 0.9
    and m["fraction_only_layer_1_matters"] <= 0.3 and m["fraction_layer_2_head_1_is_irrelevant"] <= 0.75,
    # "drops the mean probability ... from 0.44 to 0.03 ... The best single restoration reaches 0.09 ... no single state
    #  carries the whole answer"
    "causal-tracing": lambda m: m["corrupted"] <= 0.25 * m["clean"]
    and 0 < _recovery(m["clean"], m["corrupted"], m["max_restored"]) <= 0.5,
    # "Heads above 0.1 form the circuit (2 of 4 ...). Mean-ablating everything outside it keeps 0.95 ... ablating the
    #  circuit leaves 0.14"
    "circuit-analysis": lambda m: m["circuit_size"] == 2 and m["faithfulness"] >= 0.8 and m["ablated"] <= 0.4,
    "cka": _similar_layers,
    # "Concept accuracy is 0.977, 0.977, 0.975 and label accuracy 0.953, 0.951, 0.957 ... Correcting only the wrong 'tall'
    #  predictions lifts label accuracy to 0.979, 0.977, 0.980, and correcting every wrong concept to 0.996 ...
    #  hard concepts ... 0.955: little room for leakage"
    "concept-bottleneck-models": lambda m: all(
        m[f"concept_acc_{s}"] >= 0.9 and m[f"acc_{s}"] >= 0.9 and m[f"fix_tall_{s}"] >= m[f"acc_{s}"] + 0.01
        and m[f"fix_all_{s}"] >= m[f"acc_{s}"] + 0.02 and abs(m[f"hard_{s}"] - m[f"acc_{s}"]) <= 0.03
        for s in ("independent", "sequential", "joint")),
    # "finds a direction with |cos| 0.98 to v and separates true from false statements with 100% accuracy ... the first
    #  principal component of the normalised contrast differences does as well (100%), ... of the raw states ... 64%"
    "contrast-consistent-search": lambda m: m["abs_cos"] >= 0.9 and m["accuracy"] >= 0.9
    and m["pca_of_differences_accuracy"] >= 0.9 and m["raw_pca_accuracy"] <= m["accuracy"] - 0.15,
    # "100% of the counterfactuals reach their target class; ... never the noise features x4-x7 ...; median 3.6 MAD units
    #  (the nearest training row of the target class: 5.9) ... target probability 1.00 ...; lam = 0.5 brings the median
    #  distance to 2.1 with 100% still reaching the class"
    "counterfactual-explanations": lambda m: m["success_rate"] >= 0.9 and m["noise_features_moved"] <= 0.05
    and m["median_distance"] < m["median_nearest_training_row"]
    and m["median_distance_lam_0.5"] < m["median_distance"]
    and m["median_target_probability"] >= 0.9 and m["median_target_probability_lam_0.5"] >= 0.9,
    # "shared features have relative decoder norms between 0.47 and 0.52; A's own feature 0.02, B's own 0.99, 0.95"
    "crosscoders": lambda m: 0.3 <= m["shared_min"] and m["shared_max"] <= 0.7
    and m["only_a"] <= 0.15 and m["only_b_min"] >= 0.85,
    # "With 100, 300, 1000, 2000 retrained models the LDS ... is 0.725, 0.930, 0.961, 0.964, against 0.933 for TRAK ...
    #  weights correlate at r = 0.987 with leave-one-out ... the ten most harmful rows include 60% of flipped labels (chance 7%)"
    "datamodels": lambda m: m["lds_100_models"] < m["lds_2000_models"] and m["lds_2000_models"] >= 0.85
    and m["lds_2000_models"] >= m["lds_trak"] - 0.05 and m["loo_correlation"] >= 0.85
    and m["flipped_among_10_most_harmful"] >= 0.3,
    # "The layer's mean squared activation grew 35.7-fold"
    "deepdream": lambda m: m["activation_gain"] >= 5,
    # "69% of the attribution mass falls on the shape's pixels, which cover 5% of the image"
    "deeplift": _on_shape(2),
    # "Deleting by the gradient gives ... 0.44, integrated gradients 0.34 and Grad-CAM 0.42, against 0.65 for random orders;
    #  insertion gives 0.96, 0.98 and 0.98 against 0.67. A random map lands at chance (0.66 / 0.65)"
    "deletion-insertion-curves": lambda m: all(
        m[f"deletion_auc_{x}"] <= m["random_deletion_auc"] - 0.1
        and m[f"insertion_auc_{x}"] >= m["random_insertion_auc"] + 0.1
        for x in ("gradient", "integrated_gradients", "grad_cam"))
    and abs(m["deletion_auc_random_map"] - m["random_deletion_auc"]) <= 0.1
    and abs(m["insertion_auc_random_map"] - m["random_insertion_auc"]) <= 0.1,
    # "(mean 4.28 ...) The two layer-2 induction heads contribute 1.84 and 2.39; MLP 2 adds 0.06 ... The contributions add
    #  up to the logit difference to within 1.9e-06"
    "direct-logit-attribution": lambda m: m["l2_head0"] + m["l2_head1"] >= 0.7 * m["logit_diff"]
    and min(m["l2_head0"], m["l2_head1"]) >= 5 * abs(m["mlp2"]) and m["max_sum_error"] <= 1e-3,
    # "interchange-intervention accuracy is 0.89, 0.87, 0.79 ..., against 0.67 when nothing is swapped ... and at most 0.68
    #  for the best single unit. On the pairs whose label the swap should change, ... 0.73, 0.65, 0.51"
    "distributed-alignment-search": lambda m: m["iia_pre_ReLU_1"] >= m["iia_no_intervention"] + 0.1
    and m["iia_pre_ReLU_1"] >= m["iia_best_unit"] + 0.1 and m["iia_pre_ReLU_1"] >= m["iia_hidden_2"]
    and m["iia_changed_pre_ReLU_1"] >= 0.4,
    # "recovers the main-effect shapes with correlations 0.995, 0.979 and 0.983 ...; x2 ... stays flat (sd 0.063).
    #  R² = 0.704; adding the (x2, x3) pair ... raises this to 0.962, and the pair term correlates at r = 0.980"
    "explainable-boosting-machines": lambda m: min(m["shape_r_x0"], m["shape_r_x1"], m["shape_r_x3"]) >= 0.9
    and m["x2_shape_sd"] <= 0.2 and m["heldout_r2_with_pair"] >= m["heldout_r2_main"] + 0.1
    and m["pair_r"] >= 0.9,
    # "H² ... is 0.99 for (x2, x3) ... Every other pair stays at or below 0.067 ... x2 and x3 score 0.57 and 0.57,
    #  and x0, x1, x4 at most 0.000"
    "feature-interaction": lambda m: m["h2_x2_x3"] >= 0.8 and m["h2_other_pairs_max"] <= 0.2
    and min(m["h2_x2_vs_rest"], m["h2_x3_vs_rest"]) >= 0.3
    and max(m["h2_x0_vs_rest"], m["h2_x1_vs_rest"], m["h2_x4_vs_rest"]) <= 0.05,
    # "8 points are stable ..., one per corner of the 3-bit cube; the 7 unstable points are saddles"
    "fixed-point-analysis": lambda m: m["n_stable"] == 8 and m["n_fixed_points"] > m["n_stable"],
    # "the model answers X on 88% ... raises the probability of X by 0.000, -0.004, 0.008, 0.473 ... it makes X the answer
    #  on 100% of them after layer 2, 97% after layer 1 ... (none before: 0%)"
    "function-vectors": lambda m: m["icl_accuracy"] >= 0.6 and m["top_indirect_effect"] >= 0.2
    and m["after_layer2"] >= 0.8 and m["after_layer1"] >= 0.8 and m["zero_shot_before"] <= 0.1,
    # "the best depth (8) reaches 0.41, and deeper trees fit the fitting rows far better (0.68 against 0.41) ...
    #  Fidelity stalls near the additive share of the variance (0.49)"
    "global-surrogate": lambda m: max(m["best_tree_fidelity"], m["linear_fidelity"], m["depth3_fidelity"])
    <= m["additive_share"] + 0.1 and m["depth8_train_fidelity"] >= m["best_tree_fidelity"] + 0.1,
    # "20% of the attribution mass falls on the shape's pixels, which cover 5% of the image"
    "grad-cam": _on_shape(2),
    # "65% of the attribution mass falls on the shape's pixels, which cover 5% of the image"
    "gradient-x-input": _on_shape(2),
    # "40% of the attribution mass falls on the shape's pixels, which cover 5% of the image"
    "guided-backprop": _on_shape(2),
    # "A random map leaves 97%; the gradient 60%, SmoothGrad 59%, integrated gradients 90% ...; SmoothGrad is the most
    #  faithful ... Max-sensitivity ... 0.39 for the gradient and 0.32 for SmoothGrad ... and 0.04 for Grad-CAM"
    "infidelity-sensitivity": lambda m: m["infidelity_smoothgrad"] <= m["infidelity_random_map"] - 0.2
    and m["infidelity_smoothgrad"] <= m["infidelity_gradient"] + 0.02
    and m["infidelity_smoothgrad"] <= min(m["infidelity_integrated_gradients"], m["infidelity_gradient_x_input"],
                                          m["infidelity_grad_cam"]) - 0.1
    and m["sensitivity_smoothgrad"] < m["sensitivity_gradient"]
    and m["sensitivity_grad_cam"] <= 0.5 * min(v for k, v in m.items()
                                               if k.startswith("sensitivity_") and k != "sensitivity_grad_cam"),
    # "85% of the 20 most harmful rows ... are the flipped ones, against 10% by chance ... correlate at r = 0.97"
    "influence-functions": lambda m: m["flipped_among_top20_harmful"] >= 0.4 and m["loo_correlation"] >= 0.8,
    # "69% of the attribution mass falls on the shape's pixels, which cover 5% of the image"
    "integrated-gradients": _on_shape(2),
    # "29% of the attribution mass falls on the shape's pixels, which cover 5% of the image"
    "lime": _on_shape(2),
    # "Task accuracy is 0.97, 0.95, 0.86 ... against 0.51, 0.47, 0.45 on the control task ...; selectivity ... (0.49)"
    "linear-probes": lambda m: min(m["selectivity_input"], m["selectivity_hidden_1"], m["selectivity_hidden_2"]) >= 0.2,
    # "A regular linear model with 4 weights gives 2.07 (theory 2); ... duplicated features ... 1.06 (theory 1);
    #  ab = 1.5 ... 0.61 (theory 1/2); at ab = 0 ... 0.35 ... below 1/2 ... the LLC counts the directions that matter"
    "local-learning-coefficient": lambda m: 1.5 <= m["llc_regular_4"] <= 2.6 and 0.75 <= m["llc_rank_2"] <= 1.35
    and 0.35 <= m["llc_product_nonzero"] <= 0.8 and m["llc_product_zero"] <= 0.55
    and m["llc_rank_2"] <= 0.7 * m["llc_regular_4"],
    # "Accuracy on the predictable second copy is 0.03, 0.05, 0.87 ...: the answer appears only after layer 2"
    "logit-lens": lambda m: m["accuracy_blocks.1"] >= 0.6
    and max(m["accuracy_embed"], m["accuracy_blocks.0"]) <= 0.2,
    # "(cross-entropy 0.0004 ...) A step of half a filter norm ... raises the loss to 1.364 ... and a full step to 5.070;
    #  ... the loss rises ... from 0.0004 to 1.100"
    "loss-landscape-visualization": lambda m: m["center_loss"] <= 0.05
    and m["loss_at_half_step"] >= m["center_loss"] + 0.3 and m["loss_at_full_step"] >= 2 * m["loss_at_half_step"]
    and m["loss_at_init"] >= m["center_loss"] + 0.3,
    # "65% of the attribution mass falls on the shape's pixels, which cover 5% of the image"
    "lrp": _on_shape(2),
    # "the participation ratio is 3.3 ..., about the three dimensions a cube of 3-bit memories needs. Locally ...
    #  the TwoNN intrinsic dimension is 0.9"
    "manifold-geometry": lambda m: 2 <= m["participation_ratio"] <= 5
    and m["two_nn_dimension"] <= min(2, m["participation_ratio"] - 1),
    # "a compression of 3.5, 6.2, 11.6; with shuffled labels every layer compresses 0.95, 0.93, 0.89 ...
    #  held-out accuracy 0.975, 0.974, 0.976 ... while the codelengths differ by a factor of 3.3"
    "mdl-probing": lambda m: m["compression_input"] < m["compression_hidden_1"] < m["compression_hidden_2"]
    and m["compression_hidden_2"] >= 2 * m["compression_input"]
    and max(m["control_input"], m["control_hidden_1"], m["control_hidden_2"]) <= 1.2
    and min(m["probe_accuracy_input"], m["probe_accuracy_hidden_1"], m["probe_accuracy_hidden_2"]) >= 0.9,
    # "0%, 80%, 98% of their weight lies on the shape ..., and the class probability goes ... to 1.00, 0.00, 0.00.
    #  The horizontal bar cannot be deleted ... With the paper's blur ... the probabilities end at 1.00, 0.02, 0.00"
    "meaningful-perturbation": lambda m: m["p_after_hbar"] >= 0.9
    and min(m["mask_share_on_shape_vbar"], m["mask_share_on_shape_square"]) >= 0.4
    and max(m["p_after_vbar"], m["p_after_square"]) <= 0.1
    and max(m["p_after_blur_vbar"], m["p_after_blur_square"]) <= 0.2,
    # "On the straight line ... the loss rises by up to 1.12 (test accuracy drops to 0.72 at worst) ... A quadratic Bezier
    #  curve ... keeps the excess loss below 0.033 and accuracy at or above 0.94 all the way"
    "mode-connectivity": lambda m: m["line_barrier"] >= 0.3 and m["curve_barrier"] <= 0.25 * m["line_barrier"]
    and m["curve_min_accuracy"] >= 0.85 and m["line_min_accuracy"] <= m["curve_min_accuracy"] - 0.1,
    # "The gradient's ... rank correlation ... falls to 0.37 once the head is random and to 0.19 ..., against -0.00 for two
    #  random maps ... Gradient x input stays at 0.57 ... Passing (at least half way from 1.0 to the random level):
    #  gradient, guided backprop, Grad-CAM"
    "model-randomization-test": lambda m: abs(m["random_maps"]) <= 0.1
    and max(m["gradient_full"], m["guided_backprop_full"], m["grad_cam_full"]) <= (1 + m["random_maps"]) / 2 - 0.1
    and m["gradient_full"] < m["gradient_after_head"]
    and m["gradient_x_input_full"] >= m["gradient_full"] + 0.2 and m["n_passing"] >= 3,
    # "The most informative unit carries 0.41 nats (KSG estimate 0.43) of the 1.10 nats ...; 32 of 32 units exceed the
    #  largest value obtained with shuffled labels"
    "mutual-information": lambda m: m["max_mi"] >= 0.2 and abs(m["ksg_top_unit"] - m["max_mi"]) <= 0.15
    and m["n_above_shuffled"] >= 24,
    # "In conv layer 1 the best unit for 'any shape' scores 0.76 ...; 2 of the 3 shape classes have a best unit different
    #  from the 'any shape' one; 11 of 16 units reach IoU > 0.04"
    "network-dissection": lambda m: m["conv1_best_iou_shape"] >= 0.5 and m["conv2_class_specific_units"] >= 1
    and m["conv2_units_above_0.04"] >= 8
    and min(m["conv2_best_iou_hbar"], m["conv2_best_iou_vbar"], m["conv2_best_iou_square"]) >= 0.1,
    # "shape functions correlate with the planted ones at 0.998, 0.997 and 0.997; the shape of x2 ... stays near flat
    #  (sd 0.038). Held-out R² is 0.691: the interaction holds 28% of the variance ... the NAM leaves it as error"
    "neural-additive-models": lambda m: min(m["shape_r_x0"], m["shape_r_x1"], m["shape_r_x3"]) >= 0.9
    and m["x2_shape_sd"] <= 0.15 and 0.4 <= m["heldout_r2"] <= 1 - m["interaction_variance_share"] / 2,
    # "36% of the attribution mass falls on the shape's pixels, which cover 5% of the image"
    "occlusion": _on_shape(2),
    # "class 2 ... rises by 0.94 across x3; class 0 ... moves by 0.80 across x0; the noise feature x5 moves class 2 by only
    #  0.019 ... ICE curves scatter around their mean by 0.25, 0.34"
    "partial-dependence": lambda m: m["pd_range_class2_x3"] >= 0.5 and m["pd_range_class0_x0"] >= 0.4
    and m["pd_range_class2_x5"] <= 0.1 * m["pd_range_class2_x3"] and m["ice_spread_class0_x0"] >= 0.1,
    # "The model then says the source token for 100% of 32 prompts from the embedding and 100% after layer 1. ... after
    #  layer 2 ... the 9% there is the target prompt ... The logit lens ... 0%, 0%, 0% ... equals the logit lens
    #  (largest difference 0.0e+00)"
    "patchscopes": lambda m: min(m["patchscope_embed"], m["patchscope_layer1"]) >= 0.8
    and m["patchscope_layer2"] <= 0.3
    and max(m["logit_lens_embed"], m["logit_lens_layer1"], m["logit_lens_layer2"]) <= 0.2
    and m["identity_gap"] <= 1e-3,
    # "changes by -0.22, -0.69 nats through layer 2 and by +0.04, -0.09 directly. Neither path alone restores the output"
    # (the metrics are each path's best head; restoring the output would mean about +2.7 nats, corrupted -3.83 vs clean -1.14)
    "path-patching": lambda m: max(m["via_layer2"], m["direct"]) <= 0.5,
    # "93% of each point's 5 nearest neighbours in the 2-D map share its class"
    "pca": _knn_clean,
    # "Shuffling x0-x3 costs 0.36, 0.16, 0.15, 0.33 accuracy (ranked x0, x3, x1, x2); the noise features x4-x7 cost at
    #  most 0.004 ... x0 ranks first"
    "permutation-feature-importance": lambda m: min(m[f"importance_x{i}"] for i in range(4)) >= 0.05
    and max(m[f"importance_x{i}"] for i in range(4, 8)) <= 0.03
    and m["importance_x0"] == max(m[f"importance_x{i}"] for i in range(8)),
    # "Test accuracy is 1.000 ... 6 of 6 pushed patches lie on the shape ... best-matching cell lies on the shape in 35%
    #  to 100% of images ... 6 of 6 prototypes are most similar ... to their own class"
    "protopnet": lambda m: m["test_accuracy"] >= 0.9 and m["pushed_on_shape"] >= 5 and m["class_specific"] >= 5
    and m["test_match_on_shape_min"] >= 0.15,
    # "Removing the top quarter leaves 0.58 accuracy against 0.73 for random removal, and the top half 0.44 against 0.58
    #  ... the gap to random removal is +0.111 (pass); a random map's gap is +0.013, at chance"
    "remove-and-retrain": lambda m: m["acc_top_quarter"] <= m["random_top_quarter"] - 0.05
    and m["acc_top_half"] <= m["random_top_half"] - 0.05 and m["gap"] >= 0.05 and abs(m["random_map_gap"]) <= 0.05,
    # "they reproduce the head's 600 test logits to 1.5e-11 ... the 30 rows with the largest alpha hold 90% of the flipped
    #  rows (chance 10%)"
    "representer-points": lambda m: m["decomposition_max_error"] <= 1e-6
    and m["flipped_among_top30_alpha"] >= 0.4 and m["test_accuracy"] >= 0.8,
    # "the share lying on the shape is horizontal bar 0%, vertical bar 67%, square 88%; ... contrast +0.01, +0.19, +0.21.
    #  The horizontal bar map is nearly flat: a blank image is already classified horizontal bar with probability 0.99"
    "rise": lambda m: m["blank_image_max_prob"] >= 0.9 and m["contrast_hbar"] <= 0.05
    and min(m["top_pixels_on_shape_vbar"], m["top_pixels_on_shape_square"]) >= 0.3
    and min(m["contrast_vbar"], m["contrast_square"]) >= 0.08,
    # "50 of 50 edits take effect, and an edit leaves 96.1% of the other predictions unchanged (worst 91.2%). ... with the
    #  identity in place of the key covariance ... keeps only 78.0% ... 0.21 ... for the rows an edit flips against 0.10"
    "rome": lambda m: m["edits_succeeded"] >= 45 and m["kept_rome"] >= 0.9 and m["kept_rome_worst"] >= 0.8
    and m["kept_rome"] >= m["kept_identity_covariance"] + 0.08
    and m["edit_share_flipped_rows"] >= 1.5 * m["edit_share_all_rows"],
    # "Corresponding hidden layers score 0.92 on average against 0.63 for non-corresponding pairs"
    "rsa": _similar_layers,
    # "L0 23.7, 10.3, 5.0 give variance explained 0.97, 0.94, 0.82 but loss recovered 0.90, 0.78, 0.42 ... At L1 1 the SAE
    #  explains 94% of the variance yet loses 22% of the loss gap"
    "sae-evaluation": lambda m: m["l0_l1_0.3"] > m["l0_l1_1.0"] > m["l0_l1_3.0"]
    and m["fve_l1_0.3"] > m["fve_l1_1.0"] > m["fve_l1_3.0"]
    and m["recovered_l1_0.3"] > m["recovered_l1_1.0"] > m["recovered_l1_3.0"]
    and 1 - m["recovered_l1_1.0"] >= 2 * (1 - m["fve_l1_1.0"]),
    # "14% of the attribution mass falls on the shape's pixels, which cover 5% of the image"
    "saliency-maps": _on_shape(1.5),
    # "27% of the attribution mass falls on the shape's pixels, which cover 5% of the image"
    "shap": _on_shape(2),
    # "13% of the attribution mass falls on the shape's pixels, which cover 5% of the image"
    "smoothgrad": _on_shape(1.5),
    # "Every planted direction has a dictionary atom at cosine 0.82 or more (mean 0.96), with 94% of the variance explained
    #  and 2.8 active latents per example"
    "sparse-autoencoders": lambda m: m["mean_max_cosine"] >= 0.85 and m["variance_explained"] >= 0.8
    and m["l0"] <= 6,
    # "(unsteered: 89% ...) Added to the embedding ... X ... on 94% of prompts at coefficient 1; at 2 it overshoots and X
    #  falls to 8%. The same contrast added after layer 1 or layer 2 makes X the prediction on at most 5%"
    "steering-vectors": lambda m: m["unsteered_predicts_y"] >= 0.7 and m["embed_c1_predicts_x"] >= 0.7
    and m["embed_c2_predicts_x"] <= 0.4 and m["after_layers_max_predicts_x"] <= 0.25,
    # "Corresponding hidden layers score 0.80 on average against 0.77 ...: the measure barely tells corresponding layers
    #  from the others here"
    "svcca": lambda m: abs(m["matching_layers"] - m["other_pairs"]) <= 0.1 and m["other_pairs"] >= 0.5,
    # "Scores: horizontal bar 1.00, vertical bar 1.00, square 0.00"
    "tcav": lambda m: min(m["score_hbar"], m["score_vbar"]) >= 0.8 and m["score_square"] <= 0.2,
    # "the top 30 hold 73% of the flipped rows (chance 10%). The final network still gets 90% of the flipped rows 'wrong'
    #  ... ranking by the final training loss alone finds 90%: TracIn adds little over the loss here"
    "tracin": lambda m: m["recall_top30_tracin"] >= 0.4 and m["flipped_fitted"] <= 0.3
    and m["recall_top30_loss"] >= m["recall_top30_tracin"] - 0.05,
    # "The state moves fast right after an input pulse (mean step 1.60) and 20 times more slowly in between"
    "trajectory-analysis": lambda m: m["speed_after_pulse"] >= 5 * m["speed_between"],
    # "correlate at r = 0.945 with ... leave-one-out ... LDS ... 0.933 without projection, 0.873, 0.597 and 0.281 after ...
    #  8, 4 and 2 dimensions, and 0.807 averaging five projections to 4 dimensions; leave-one-out itself scores 0.956"
    "trak": lambda m: m["loo_correlation"] >= 0.8 and m["lds_full"] >= 0.8 and m["lds_loo"] >= 0.8
    and m["lds_full"] >= m["lds_k8"] >= m["lds_k4"] + 0.1 >= m["lds_k2"] + 0.2
    and m["lds_k4_ensemble"] >= m["lds_k4"] + 0.1,
    # "explain 97.1% and 97.6% ... with 24 and 33 active latents per token; one cross-layer transcoder ... 96.9% and 98.3%
    #  ... (32 and 43 of 64 neurons active per token) ... the transcoders are sparser than the neurons"
    "transcoders": lambda m: min(m["fve_mlp1"], m["fve_mlp2"], m["fve_clt_mlp1"], m["fve_clt_mlp2"]) >= 0.9
    and m["l0_mlp1"] < m["neurons_active_mlp1"],
    # "92% of each point's 5 nearest neighbours in the 2-D map share its class"
    "tsne": _knn_clean,
    # "(KL to the final logits 0.63, 0.61, 0.00) ... even a trained readout cannot find the copied token before layer 2"
    # (the metrics hold only the layer-1 KL, not the accuracies the reading rests on: checked as far as they go)
    "tuned-lens": lambda m: m["kl_layer1"] >= 0.2,
    # umap / phate need optional packages (no committed reading): same reading as pca and t-SNE, "separates ... cleanly"
    "umap": _knn_clean,
    "phate": _knn_clean,
}
