"""A handler that decodes each record and does nothing else: the runner's cost, isolated."""

import base64


def lambda_handler(event, context):
    for record in event["Records"]:
        base64.b64decode(record["kinesis"]["data"])
    return {"batchItemFailures": []}
