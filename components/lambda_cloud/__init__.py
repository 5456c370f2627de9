"""Old import path of `providers.lambda_cloud`, kept for state written before the layout move.

Every dynamic resource's state holds its provider pickled by reference to the module path it was
created under (`__provider`). Stacks created before the move name `components.lambda_cloud.provider`
and `components.lambda_cloud.account_providers`; the engine unpickles that value for refresh and
delete, so these two modules must stay importable. Nothing in the program imports them.
"""
