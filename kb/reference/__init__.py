"""Reference implementations of interpretability methods: small, tested PyTorch functions.

Every public function is importable from here; ``METHOD_REFERENCES`` maps each method record's
id to the top-level function (``"kb.reference.<module>:<function>"``) its ``reference:`` names.
Importing this package imports torch; the rest of ``kb`` never does.
"""

from .alignment import DASResult, distributed_alignment_search, interchange_intervention
from .blackbox import (AnchorResult, PartialDependence, anchors, partial_dependence, permutation_feature_importance,
                       rise, rise_masks)
from .circuit_discovery import ACDCResult, acdc, attribution_patching, kl_to_clean
from .counterfactual import counterfactual_explanation, median_absolute_deviation
from .dissection import network_dissection, unit_masks
from .editing import add_steering, key_covariance, rome_edit, steering_vector, steering_vectors
from .influence import influence_functions, per_example_gradients, tracin
from .mdl import MDLResult, mdl_probe
from .attention import (attention_patterns, attention_rollout, prefix_matching_chance,
                        prefix_matching_score, previous_token_score)
from .attribution import (deeplift, gradient_x_input, guided_backprop, integrated_gradients, occlusion,
                          saliency, smoothgrad)
from .cam import eigen_cam, grad_cam, grad_cam_plus_plus, layer_cam, score_cam
from .evaluation import (AttributionChecks, DeletionInsertion, RandomizationResult, RemoveAndRetrain,
                         check_attributions, deletion_insertion_curves, infidelity, max_sensitivity,
                         model_randomization_test, rank_correlation, remove_and_retrain)
from .perturbation import meaningful_perturbation
from .circuits import CircuitResult, circuit_analysis
from .dynamics import (Basins, FixedPoints, Trajectory, attractor_basins, find_fixed_points, jacobians,
                       trajectory_analysis)
from .embedding import (ManifoldGeometry, PCAResult, manifold_geometry, participation_ratio, pca, phate,
                        tsne, two_nn_dimension, umap)
from .lens import TunedLens, logit_lens, tuned_lens
from .lrp import lrp
from .patching import ablation, activation_patching, causal_tracing, path_patching, patching_sweep
from .probes import (INLP, CausalProbe, ProbeResult, causal_probing, control_labels, inlp, linear_probe,
                     mutual_information_binned, mutual_information_ksg, train_linear_probe)
from .sae import SparseAutoencoder, sae_loss, train_sae
from .shapley import kernel_shap, lime, shapley_values_exact
from .similarity import linear_cka, rbf_cka, rdm, rsa, spearman, svcca
from .tcav import TCAVResult, concept_activation_vector, tcav
from .visualization import activation_maximization, deepdream, gaussian_blur
from .by_design import (ConceptBottleneckModel, NeuralAdditiveModel, ProtoPNet, PushResult, intervene,
                        push_prototypes, train_cbm, train_nam, train_protopnet)
from .global_effects import (ALE, EBM, Surrogate, accumulated_local_effects, global_surrogate, h_statistic,
                             train_ebm)
from .data_attribution import (Datamodels, Representers, correct_class_margin, datamodels,
                               linear_datamodeling_score, representer_points, trak)
from .landscape import (LLC, Landscape, ModeConnectivity, filter_normalized_direction, local_learning_coefficient,
                        loss_landscape, mode_connectivity)
from .transcoders import (CrossLayerTranscoder, Crosscoder, Transcoder, fraction_variance_explained, mlp_io,
                          relative_decoder_norm, train_cross_layer_transcoder, train_crosscoder, train_transcoder)
from .attribution_graph import AttributionGraph, attribution_graph, graph_influence, graph_scores, prune_graph
from .sae_eval import SAEEvaluation, dictionary_metrics, evaluate_sae, feature_absorption, spliced_loss
from .autointerp import (AutoInterpResult, automated_interpretability, detection_score, explain_by_top_tokens,
                         simulation_score)
from .lens import LogitAttribution, direct_logit_attribution, patchscope
from .editing import FunctionVector, function_vector
from .probes import CCSResult, ccs
from .circuits import ScrubResult, causal_scrubbing

__all__ = [
    # attribution
    "saliency", "gradient_x_input", "smoothgrad", "integrated_gradients", "occlusion", "deeplift",
    "guided_backprop", "grad_cam", "kernel_shap", "lime", "shapley_values_exact", "lrp",
    "grad_cam_plus_plus", "score_cam", "layer_cam", "eigen_cam",
    # feature visualisation
    "activation_maximization", "deepdream", "gaussian_blur",
    # probing
    "train_linear_probe", "linear_probe", "control_labels", "ProbeResult", "mutual_information_binned",
    "mutual_information_ksg", "inlp", "INLP", "causal_probing", "CausalProbe",
    # representations
    "pca", "PCAResult", "tsne", "umap", "phate", "manifold_geometry", "ManifoldGeometry",
    "participation_ratio", "two_nn_dimension", "linear_cka", "rbf_cka", "svcca", "rsa", "rdm", "spearman",
    # dynamics
    "find_fixed_points", "FixedPoints", "jacobians", "trajectory_analysis", "Trajectory",
    "attractor_basins", "Basins",
    # mechanistic
    "activation_patching", "patching_sweep", "path_patching", "causal_tracing", "ablation",
    "attention_patterns", "attention_rollout", "prefix_matching_score", "prefix_matching_chance",
    "previous_token_score", "logit_lens", "tuned_lens", "TunedLens", "SparseAutoencoder", "sae_loss",
    "train_sae", "circuit_analysis", "CircuitResult",
    # concept-based
    "tcav", "TCAVResult", "concept_activation_vector",
    # black-box and data attribution
    "rise", "rise_masks", "anchors", "AnchorResult", "permutation_feature_importance", "partial_dependence",
    "PartialDependence", "counterfactual_explanation", "median_absolute_deviation", "influence_functions",
    "per_example_gradients", "tracin", "mdl_probe", "MDLResult",
    # editing, circuit discovery, alignment, dissection
    "steering_vector", "add_steering", "steering_vectors", "key_covariance", "rome_edit",
    "attribution_patching", "acdc", "ACDCResult", "kl_to_clean", "distributed_alignment_search",
    "interchange_intervention", "DASResult", "network_dissection", "unit_masks",
    # evaluation: checks to run on your own model
    "model_randomization_test", "RandomizationResult", "deletion_insertion_curves", "DeletionInsertion",
    "remove_and_retrain", "RemoveAndRetrain", "infidelity", "max_sensitivity", "rank_correlation",
    "meaningful_perturbation", "check_attributions", "AttributionChecks",
    # interpretable by design, global effects, data attribution, loss landscapes
    "ConceptBottleneckModel", "train_cbm", "intervene", "ProtoPNet", "PushResult", "push_prototypes",
    "train_protopnet", "NeuralAdditiveModel", "train_nam", "ALE", "accumulated_local_effects", "h_statistic",
    "Surrogate", "global_surrogate", "EBM", "train_ebm", "correct_class_margin", "trak", "Datamodels",
    "datamodels", "linear_datamodeling_score", "Representers", "representer_points",
    "filter_normalized_direction", "Landscape", "loss_landscape", "ModeConnectivity", "mode_connectivity",
    "LLC", "local_learning_coefficient",
    # transcoders, attribution graphs, SAE evaluation, LLM mechanistic methods
    "Transcoder", "train_transcoder", "CrossLayerTranscoder", "train_cross_layer_transcoder", "Crosscoder",
    "train_crosscoder", "relative_decoder_norm", "fraction_variance_explained", "mlp_io", "AttributionGraph",
    "attribution_graph", "graph_influence", "graph_scores", "prune_graph", "SAEEvaluation", "evaluate_sae",
    "dictionary_metrics", "spliced_loss", "feature_absorption", "AutoInterpResult", "automated_interpretability",
    "explain_by_top_tokens", "simulation_score", "detection_score", "LogitAttribution", "direct_logit_attribution",
    "patchscope", "FunctionVector", "function_vector", "CCSResult", "ccs", "ScrubResult", "causal_scrubbing",
    "METHOD_REFERENCES",
]

# method record id -> "kb.reference.<module>:<top-level function>"; every target is a top-level
# ``def`` in that module (checked by tests/reference/test_registry.py with ``ast``).
METHOD_REFERENCES: dict[str, str] = {
    "saliency-maps": "kb.reference.attribution:saliency",
    "gradient-x-input": "kb.reference.attribution:gradient_x_input",
    "smoothgrad": "kb.reference.attribution:smoothgrad",
    "integrated-gradients": "kb.reference.attribution:integrated_gradients",
    "grad-cam": "kb.reference.cam:grad_cam",
    "cam-variants": "kb.reference.cam:grad_cam_plus_plus",
    "occlusion": "kb.reference.attribution:occlusion",
    "lime": "kb.reference.shapley:lime",
    "shap": "kb.reference.shapley:kernel_shap",
    "lrp": "kb.reference.lrp:lrp",
    "deeplift": "kb.reference.attribution:deeplift",
    "guided-backprop": "kb.reference.attribution:guided_backprop",
    "activation-maximization": "kb.reference.visualization:activation_maximization",
    "deepdream": "kb.reference.visualization:deepdream",
    "linear-probes": "kb.reference.probes:linear_probe",
    "causal-probing": "kb.reference.probes:causal_probing",
    "mutual-information": "kb.reference.probes:mutual_information_ksg",
    "pca": "kb.reference.embedding:pca",
    "tsne": "kb.reference.embedding:tsne",
    "umap": "kb.reference.embedding:umap",
    "phate": "kb.reference.embedding:phate",
    "cka": "kb.reference.similarity:linear_cka",
    "svcca": "kb.reference.similarity:svcca",
    "rsa": "kb.reference.similarity:rsa",
    "manifold-geometry": "kb.reference.embedding:manifold_geometry",
    "fixed-point-analysis": "kb.reference.dynamics:find_fixed_points",
    "trajectory-analysis": "kb.reference.dynamics:trajectory_analysis",
    "attractor-landscapes": "kb.reference.dynamics:attractor_basins",
    "circuit-analysis": "kb.reference.circuits:circuit_analysis",
    "sparse-autoencoders": "kb.reference.sae:train_sae",
    "activation-patching": "kb.reference.patching:activation_patching",
    "attention-pattern-analysis": "kb.reference.attention:attention_patterns",
    "attention-rollout": "kb.reference.attention:attention_rollout",
    "logit-lens": "kb.reference.lens:logit_lens",
    "tuned-lens": "kb.reference.lens:tuned_lens",
    "path-patching": "kb.reference.patching:path_patching",
    "causal-tracing": "kb.reference.patching:causal_tracing",
    "ablation": "kb.reference.patching:ablation",
    "tcav": "kb.reference.tcav:tcav",
    "rise": "kb.reference.blackbox:rise",
    "anchors": "kb.reference.blackbox:anchors",
    "permutation-feature-importance": "kb.reference.blackbox:permutation_feature_importance",
    "partial-dependence": "kb.reference.blackbox:partial_dependence",
    "counterfactual-explanations": "kb.reference.counterfactual:counterfactual_explanation",
    "influence-functions": "kb.reference.influence:influence_functions",
    "tracin": "kb.reference.influence:tracin",
    "mdl-probing": "kb.reference.mdl:mdl_probe",
    "attribution-patching": "kb.reference.circuit_discovery:attribution_patching",
    "steering-vectors": "kb.reference.editing:steering_vectors",
    "automated-circuit-discovery": "kb.reference.circuit_discovery:acdc",
    "distributed-alignment-search": "kb.reference.alignment:distributed_alignment_search",
    "rome": "kb.reference.editing:rome_edit",
    "network-dissection": "kb.reference.dissection:network_dissection",
    "model-randomization-test": "kb.reference.evaluation:model_randomization_test",
    "deletion-insertion-curves": "kb.reference.evaluation:deletion_insertion_curves",
    "remove-and-retrain": "kb.reference.evaluation:remove_and_retrain",
    "infidelity-sensitivity": "kb.reference.evaluation:infidelity",
    "meaningful-perturbation": "kb.reference.perturbation:meaningful_perturbation",
    "concept-bottleneck-models": "kb.reference.by_design:train_cbm",
    "protopnet": "kb.reference.by_design:train_protopnet",
    "neural-additive-models": "kb.reference.by_design:train_nam",
    "explainable-boosting-machines": "kb.reference.global_effects:train_ebm",
    "accumulated-local-effects": "kb.reference.global_effects:accumulated_local_effects",
    "feature-interaction": "kb.reference.global_effects:h_statistic",
    "global-surrogate": "kb.reference.global_effects:global_surrogate",
    "trak": "kb.reference.data_attribution:trak",
    "datamodels": "kb.reference.data_attribution:datamodels",
    "representer-points": "kb.reference.data_attribution:representer_points",
    "loss-landscape-visualization": "kb.reference.landscape:loss_landscape",
    "mode-connectivity": "kb.reference.landscape:mode_connectivity",
    "local-learning-coefficient": "kb.reference.landscape:local_learning_coefficient",
    "transcoders": "kb.reference.transcoders:train_transcoder",
    "crosscoders": "kb.reference.transcoders:train_crosscoder",
    "attribution-graphs": "kb.reference.attribution_graph:attribution_graph",
    "sae-evaluation": "kb.reference.sae_eval:evaluate_sae",
    "automated-interpretability": "kb.reference.autointerp:automated_interpretability",
    "direct-logit-attribution": "kb.reference.lens:direct_logit_attribution",
    "patchscopes": "kb.reference.lens:patchscope",
    "function-vectors": "kb.reference.editing:function_vector",
    "contrast-consistent-search": "kb.reference.probes:ccs",
    "causal-scrubbing": "kb.reference.circuits:causal_scrubbing",
}
