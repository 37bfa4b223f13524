"""Push notifications: the target policy, the per-task config store, and the sender that calls back.

:class:`PushPolicy` decides which URLs may be called; :class:`PushConfigStore` keeps each task's
configs, per owner, in the persistence backend; :class:`PushSender` delivers every task event to
them, in order, retried with backoff.
"""

from .policy import PushPolicy, PushTarget, PushTargetRefused, address_kind
from .sender import PushSender, RetryPolicy
from .store import PushConfigStore

__all__ = ["PushConfigStore", "PushPolicy", "PushSender", "PushTarget", "PushTargetRefused", "RetryPolicy", "address_kind"]
