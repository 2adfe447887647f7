# bash completion for outboxctl: commands, their options, states, and sink names read from
# the config given with --config (else /etc/outbox/outboxd.yaml when readable).

# Sink names a config defines: each `- name: X` entry of `sinks:`, plus `webhook` for
# Flipt's audit webhook. A plain-text scan: good enough to complete, never to validate.
_outboxctl_sinks()
{
    local cfg=$1
    [ -r "$cfg" ] || return 0
    sed -n -e 's/^[[:space:]]*-[[:space:]]*name:[[:space:]]*["'\'']\{0,1\}\([A-Za-z0-9._-]*\).*/\1/p' \
        -e 's/^[[:space:]]*\(webhook\):[[:space:]]*$/\1/p' "$cfg"
}

_outboxctl()
{
    local cur prev cmd cfg i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="stats list show replay purge pause resume export import render listen sign backup check"
    cfg=/etc/outbox/outboxd.yaml
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --config) cfg=${COMP_WORDS[i+1]}; i=$((i + 1)) ;;
            --config=*) cfg=${COMP_WORDS[i]#--config=} ;;
            --data-dir) i=$((i + 1)) ;;
            -*) ;;
            *) [ -z "$cmd" ] && cmd=${COMP_WORDS[i]} ;;
        esac
    done
    cfg=${cfg/#\~/$HOME}

    case $prev in
        --config|--template|--event|--ca-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --data-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --state) COMPREPLY=($(compgen -W "pending inflight dead delivered all" -- "$cur")); return ;;
        --sink) COMPREPLY=($(compgen -W "$(_outboxctl_sinks "$cfg")" -- "$cur")); return ;;
        --since|--until|--before) COMPREPLY=($(compgen -W "now 1h 6h 24h 7d" -- "$cur")); return ;;
        --type|--action|--limit|--port|--host|--secret|--status|--count|--id|--timestamp|--url|--token)
            return ;;
    esac

    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "$commands --config --data-dir --help --version" -- "$cur"))
        return
    fi
    local opts
    case $cmd in
        stats|check) opts="--json" ;;
        list) opts="--state --sink --type --action --since --until --newest --oldest --limit --json" ;;
        show) opts="--json" ;;
        replay) opts="--dead --sink --type --action --since --until --dry-run --json" ;;
        purge) opts="--dead --sink --before --yes --dry-run" ;;
        export) opts="--state --sink --type --action --since --until --limit" ;;
        import) opts="--sink --url --token" ;;
        render) opts="--template --event --config --sink --raw" ;;
        listen) opts="--port --host --secret --status --count --json" ;;
        sign) opts="--secret --id --timestamp --json" ;;
        backup) opts="" ;;
        pause|resume) opts="--json" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
    else
        case $cmd in
            import|sign) COMPREPLY=($(compgen -f -- "$cur")) ;;
            backup) COMPREPLY=($(compgen -d -- "$cur")) ;;
            pause|resume) COMPREPLY=($(compgen -W "$(_outboxctl_sinks "$cfg")" -- "$cur")) ;;
        esac
    fi
}
complete -F _outboxctl outboxctl
