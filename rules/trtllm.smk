# Stages 2 and 3 of containerized backends (TensorRT-LLM): the generic checkpoint and engine rules,
# run in the pinned NGC container (with `--sdm apptainer`) and, for the engine build, on a GPU. The
# container tag is also part of every such spec (params), so upgrading it marks the artifacts stale.


use rule checkpoint as trtllm_checkpoint with:
    wildcard_constraints:
        checkpoint=one_of_or_none(PLAN.checkpoint_slugs(in_container=True)),
    container:
        CONTAINER


use rule engine as trtllm_engine with:
    wildcard_constraints:
        variant=one_of_or_none(PLAN.engine_slugs(in_container=True)),
    container:
        CONTAINER
    resources:
        gpu=1,
