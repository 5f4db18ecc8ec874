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

# moto's TransactWriteItems deep-copies every table it touches (items and stream records) before each transaction,
# to roll back on failure: a landing costs time in proportion to the table (measured: 170 ms with 250 items, 1.2 s
# with 1,000). DynamoDB's cost does not grow with the table. Since requests are serialised above, the same
# semantics hold with a cheaper plan: check every condition first (nothing written if any fails, as moto does),
# then apply the operations, keeping copies of only the items touched, and the stream's length, to undo a write
# that fails part-way (a validation error). Same checks, same errors, same stream records.
try:
    import copy as _copy

    from moto.dynamodb.comparisons import get_filter_expression as _filter
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed as _CCF,
        MultipleTransactionsException as _Multiple,
        TooManyTransactionsException as _TooMany,
        TransactionCanceledException as _Cancelled,
        TransactWriteSingleOpException as _SingleOp,
    )
    from moto.dynamodb.models import DynamoDBBackend as _Backend
except ImportError:
    pass
else:

    def _key_of(backend, op_type, op):
        table = backend.get_table(op["TableName"])
        if op_type != "Put":
            return table, op["Key"]
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return table, key

    def transact_write_items(self, transact_items):
        if len(transact_items) > 100:
            raise _TooMany()
        ops, seen, errors = [], set(), []
        for item in transact_items:
            if len(list(item.keys())) > 1:
                raise _SingleOp
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table, key = _key_of(self, op_type, op)
            unique = (str(op["TableName"]), str(dict(sorted(key.items()))))
            if unique in seen:
                raise _Multiple()
            seen.add(unique)
            ops.append((op_type, op, table, key))
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None and not _filter(condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")).expr(current):
                old = current.to_json()["Attributes"] if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current else None
                errors.append(("ConditionalCheckFailed", str(_CCF().message), old))
            else:
                errors.append((None, None, None))
        if any(code is not None for code, _, _ in errors):
            raise _Cancelled(errors)

        undo = []
        for _, op, table, key in ops:
            hash_value, range_value = self.get_keys_value(table, key)
            before = table.get_item(hash_value, range_value)
            undo.append((table, hash_value, range_value, _copy.deepcopy(before), len(table.stream_shard.items) if table.stream_shard else 0))
        try:
            for op_type, op, _, key in ops:
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    self.put_item(op["TableName"], op["Item"], condition_expression=op.get("ConditionExpression"), expression_attribute_names=names, expression_attribute_values=values)
                elif op_type == "Delete":
                    self.delete_item(op["TableName"], key, condition_expression=op.get("ConditionExpression"), expression_attribute_names=names, expression_attribute_values=values)
                elif op_type == "Update":
                    self.update_item(op["TableName"], key, update_expression=op["UpdateExpression"], condition_expression=op.get("ConditionExpression"), expression_attribute_names=names, expression_attribute_values=values)
        except Exception:
            for table, hash_value, range_value, before, stream_length in reversed(undo):
                bucket = table.items[hash_value] if range_value is not None else table.items
                slot = range_value if range_value is not None else hash_value
                if before is None:
                    bucket.pop(slot, None)
                else:
                    bucket[slot] = before
                if table.stream_shard:
                    del table.stream_shard.items[stream_length:]
            raise

    _Backend.transact_write_items = transact_write_items
    print("canopy-moto: transactions check first, then write", file=sys.stderr, flush=True)
