"""The admin web console under /admin, a page group per module.

`Console` (site.py) puts the pages together and routes to them; each page group stands
in `ConsoleFrame` (frame.py: the collaborators, the sign-in and CSRF guards, the
templates): signing in and out (access.py), a channel's pages (channels.py), a user's
(users.py), and the lists of conversations, reminders, audit and usage (records.py).
Imported only when the console is served (Jinja2 and the templates).
"""

from bot.web.console.frame import ConsoleFrame, Reminders
from bot.web.console.records import usage_chart
from bot.web.console.site import Console

__all__ = ["Console", "ConsoleFrame", "Reminders", "usage_chart"]
