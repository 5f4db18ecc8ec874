# Imported at startup by the moto_server the test harness spawns (it puts this folder on PYTHONPATH).
#
# DynamoDB applies each conditional write atomically per item. moto's threaded server checks a condition
# and then applies the update with no lock, so two concurrent writers can both pass the same condition
# (seen with just 2 clients on a loaded machine). Serialising moto's DynamoDB request handling (the write
# and the serialisation of its response) restores the guarantee the ledger relies on; nothing else changes.
import sys
import threading

try:
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
except ImportError:  # some other Python started with this PYTHONPATH: leave it alone
    pass
else:
    _lock = threading.RLock()

    def _serialised(call_action):
        def locked(self):
            with _lock:
                return call_action(self)

        return locked

    DynamoHandler.call_action = _serialised(DynamoHandler.call_action)
    DynamoDBStreamsHandler.call_action = _serialised(DynamoDBStreamsHandler.call_action)
    print("canopy-moto: DynamoDB requests serialised", file=sys.stderr, flush=True)
