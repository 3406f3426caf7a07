"""When schedules fire: cron syntax and its DST rules, time zones, intervals, active hours
and jitter. Pure functions of a spec and a moment; they import nothing else of ours."""
