import asyncio
import os
import sys
import unittest
from unittest.mock import AsyncMock, Mock, patch

import azure.functions as func

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.path.pardir))

from greetings import start_orchestrator
from numbers_bp import http_start


class TestFunction(unittest.TestCase):
    @patch("orchestration.DurableOrchestrationClient")
    def test_start_orchestrator(self, client):
        # Get the original method definition as seen in the blueprint module
        func_call = start_orchestrator.build().get_user_function().client_function

        req = func.HttpRequest(method="GET", body=b"{}", url="/api/startOrchestrator")

        client.start_new = AsyncMock(return_value="instance_id")
        client.create_check_status_response = Mock(return_value="check_status_response")

        result = asyncio.run(func_call(req, client))

        client.start_new.assert_called_once_with("my_orchestrator")
        client.create_check_status_response.assert_called_once_with(req, "instance_id")
        self.assertEqual(result, "check_status_response")

    @patch("orchestration.DurableOrchestrationClient")
    def test_http_start(self, client):
        func_call = http_start.build().get_user_function().client_function

        req = func.HttpRequest(
            method="POST",
            body=b"[1, 2]",
            url="/api/orchestrators/sum_of_squares",
            route_params={"functionName": "sum_of_squares"},
        )

        client.start_new = AsyncMock(return_value="instance_id")
        client.create_check_status_response = Mock(return_value="check_status_response")

        result = asyncio.run(func_call(req, client))

        client.start_new.assert_called_once_with("sum_of_squares", client_input=[1, 2])
        client.create_check_status_response.assert_called_once_with(req, "instance_id")
        self.assertEqual(result, "check_status_response")
