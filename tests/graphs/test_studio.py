"""What Studio / the SDK sends as a run's context is checked before the graph runs: a mistyped key
is an error naming the closest option (the server would otherwise drop it), a bad value too."""

from __future__ import annotations

import pytest
from langgraph_sdk.runtime import _ExecutionRuntime

from graphs import studio
from graphs.latent_mas import graph as latent_mas_graph
from nodes.fields import OptionError


def run_context(context):
    return _ExecutionRuntime(access_context="threads.create_run", store=None, context=context)


@pytest.mark.parametrize(
    ("factory", "context", "message"),
    [
        (
            studio.latent_mas,
            {"temprature": 0.5},
            "unknown option 'temprature' for MASContext; did you mean 'temperature'?",
        ),
        (studio.debate, {"max_round": 2}, "did you mean 'max_rounds'?"),
        (studio.medagents, {"methd": "syn_only"}, "did you mean 'method'?"),
        (studio.debate, {"max_rounds": 0}, "option 'max_rounds' must be >= 1, got 0"),
        (studio.baseline, {"top_p": 7}, "option 'top_p' must be <= 1.0, got 7"),
    ],
)
def test_bad_studio_contexts_are_refused(factory, context, message):
    with pytest.raises(OptionError, match=message.replace("?", r"\?").replace("(", r"\(")):
        factory(run_context(context))


def test_good_contexts_and_server_keys_pass():
    runtime = run_context({"temperature": 0.5, "thread_id": "t", "__after_seconds__": 0, "langgraph_x": 1})
    assert studio.latent_mas(runtime) is latent_mas_graph
    assert studio.latent_mas(run_context(None)) is latent_mas_graph


def test_a_dict_context_given_to_invoke_names_the_closest_option():
    with pytest.raises(OptionError, match="did you mean 'temperature'"):
        latent_mas_graph.invoke({"question": "2+2?"}, context={"temprature": 0.5})
