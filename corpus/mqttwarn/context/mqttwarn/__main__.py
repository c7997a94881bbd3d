import mqttwarn.commands

mqttwarn.commands.run()
