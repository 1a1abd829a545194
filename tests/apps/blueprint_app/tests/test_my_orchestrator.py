import os
import sys
import unittest
from unittest.mock import Mock, call, patch

# Lets the tests import the app's modules when run from any directory, as DF's samples do.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.path.pardir))

from greetings import my_orchestrator

from orchestration.testing import orchestrator_generator_wrapper


class MockTask:
    def __init__(self, result=None):
        self.result = result


def mock_activity(activity_name, input):
    if activity_name == "say_hello":
        return MockTask(f"Hello {input}!")
    raise Exception("Activity not found")


class TestFunction(unittest.TestCase):
    @patch("orchestration.DurableOrchestrationContext")
    def test_chaining_orchestrator(self, context):
        # Get the original method definition as seen in the blueprint module
        func_call = my_orchestrator.build().get_user_function().orchestrator_function

        context.call_activity = Mock(side_effect=mock_activity)
        # Create a generator using the method and mocked context
        user_orchestrator = func_call(context)

        values = [val for val in orchestrator_generator_wrapper(user_orchestrator)]

        expected_activity_calls = [
            call("say_hello", "Tokyo"),
            call("say_hello", "Seattle"),
            call("say_hello", "London"),
        ]
        self.assertEqual(context.call_activity.call_count, 3)
        self.assertEqual(context.call_activity.call_args_list, expected_activity_calls)
        self.assertEqual(values[3], ["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
