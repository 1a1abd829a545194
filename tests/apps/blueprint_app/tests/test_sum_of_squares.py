import os
import sys
import unittest
from unittest.mock import Mock, call, patch

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.path.pardir))

from greetings import say_hello
from numbers_bp import square, sum_of_squares

from orchestration.testing import orchestrator_generator_wrapper


@patch("orchestration.TaskBase")
def create_mock_task(result, task):
    task.result = result
    return task


def mock_activity(activity_name, input):
    if activity_name == "square":
        return create_mock_task(input * input)
    if activity_name == "say_hello":
        return create_mock_task(f"Hello {input}!")
    raise Exception("Activity not found")


def mock_task_all(tasks):
    return create_mock_task([t.result for t in tasks])


class TestFunction(unittest.TestCase):
    @patch("orchestration.DurableOrchestrationContext")
    def test_sum_of_squares(self, context):
        func_call = sum_of_squares.build().get_user_function().orchestrator_function

        context.get_input = Mock(return_value=[1, 2, 3])
        context.call_activity = Mock(side_effect=mock_activity)
        context.task_all = Mock(side_effect=mock_task_all)

        user_orchestrator = func_call(context)
        values = [val for val in orchestrator_generator_wrapper(user_orchestrator)]

        expected_activity_calls = [
            call("square", 1),
            call("square", 2),
            call("square", 3),
            call("say_hello", "14"),
        ]
        self.assertEqual(context.call_activity.call_args_list, expected_activity_calls)
        context.task_all.assert_called_once()
        self.assertEqual(values[-1], {"squares": [1, 4, 9], "total": 14, "greeting": "Hello 14!"})

    def test_activities(self):
        # Activities need nothing special: the builder gives back the plain function
        self.assertEqual(square.build().get_user_function()(7), 49)
        self.assertEqual(say_hello.build().get_user_function()("Oslo"), "Hello Oslo!")
