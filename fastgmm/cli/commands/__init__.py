"""The registry of ``fastgmm`` subcommands: one module per command.

Each module has ``register(sub)``, which adds the command's parser to the ``sub``
action of :func:`fastgmm.cli.build_parser` and binds ``set_defaults(run=run)``, and
``run(args)``, which takes the parsed namespace and returns an exit status. Only the
standard library is imported at their module level, so ``fastgmm --help`` stays
fast. To add a subcommand, write such a module and list it in :data:`COMMANDS`.
"""

from . import bench, demo, fit, predict, sample, segment, select, warmup

#: the command modules, in the order ``fastgmm --help`` lists them
COMMANDS = (demo, warmup, fit, predict, select, sample, bench, segment)
